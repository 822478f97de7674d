"""HTML for Jupyter reprs and captions, always escaping text that came from users.

No widgets here: these are plain strings and bytes that also render in static
exports (nbconvert, GitHub).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable

__all__ = [
    "caption_html",
    "escape",
    "figure_html",
    "no_math",
    "short_prompt",
    "show_once",
    "show_until_done",
]

_CAPTION_PROMPT_CHARS = 300
# MathJax 2's and 3's "ignore" markers (and the Studio's text class)
_NO_MATH_OPEN = '<div class="mai-text tex2jax_ignore mathjax_ignore">'


def escape(text: object) -> str:
    """HTML-escape any text from a user or a server, quotes included."""
    return html.escape(str(text), quote=True)


def no_math(html_text: str) -> str:
    """`html_text` that MathJax leaves alone: `$` as `&#36;` inside an ignored block.

    Jupyter front ends typeset `$…$` pairs in HTML (two prices in one output become
    mathematics); the classes are MathJax 2's and 3's "ignore" markers, and the entity keeps
    raw-source renderers (GitHub) from pairing them. Idempotent; "" stays "".
    """
    if not html_text or html_text.startswith(_NO_MATH_OPEN):
        return html_text
    return f"{_NO_MATH_OPEN}{html_text.replace('$', '&#36;')}</div>"


def short_prompt(prompt: str, limit: int = _CAPTION_PROMPT_CHARS) -> str:
    """`prompt` cut to at most `limit` characters, an ellipsis marking the cut (not escaped)."""
    return prompt if len(prompt) <= limit else prompt[: limit - 1] + "…"


def figure_html(data: bytes, mime: str, caption_html: str, width: int) -> str:
    """An `<img>` with inline data and a caption, sized to fit the cell."""
    encoded = base64.b64encode(data).decode("ascii")
    return (
        '<figure style="margin:0;display:inline-block;max-width:100%">'
        f'<img src="data:{escape(mime)};base64,{encoded}" '
        f'style="max-width:min(100%,{int(width)}px);height:auto" alt="">'
        f'<figcaption style="font-size:90%;color:#555">{no_math(caption_html)}</figcaption>'
        "</figure>"
    )


def caption_html(caption: str) -> str:
    """A caption line (already escaped HTML) styled like `figure_html`'s, without an image."""
    return f'<div style="font-size:90%;color:#555">{no_math(caption)}</div>'


def show_once(png: bytes, caption: str, text: str, width: int) -> None:
    """Show an image then its caption (escaped HTML) as two outputs in IPython.

    A saved notebook then holds the PNG once (an `image/png` output, which nbconvert and
    GitHub show as `<img>`), instead of once more as base64 inside an HTML figure.
    """
    from IPython.display import display

    display(  # type: ignore[no-untyped-call]
        {"image/png": png, "text/plain": text},
        raw=True,
        metadata={"image/png": {"width": int(width)}},
    )
    display({"text/html": caption_html(caption)}, raw=True)  # type: ignore[no-untyped-call]


def show_until_done(live: object) -> Callable[[str], None]:
    """Show `live` (a progress widget) in IPython; the function returned replaces it with text.

    A saved notebook then holds the finished line ("12/12 images") where the bar was, which
    reopens anywhere, instead of a widget that needs its kernel ("model not found").
    """
    from IPython.display import display

    handle = display(live, display_id=True)  # type: ignore[no-untyped-call]

    def replace(text: str) -> None:
        if handle is not None:
            handle.update({"text/plain": text}, raw=True)

    return replace
