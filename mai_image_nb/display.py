"""HTML for Jupyter reprs and captions, always escaping text that came from users.

No widgets here: these are plain strings and bytes that also render in static
exports (nbconvert, GitHub).
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from .generation import Generation

__all__ = [
    "PREVIEW_MAX_PX",
    "escape",
    "figure_html",
    "generation_caption",
    "preview_bytes",
    "short_prompt",
]

PREVIEW_MAX_PX = 512
PREVIEW_QUALITY = 85
_CAPTION_PROMPT_CHARS = 300


def escape(text: object) -> str:
    """HTML-escape any text from a user or a server, quotes included."""
    return html.escape(str(text), quote=True)


def short_prompt(prompt: str, limit: int = _CAPTION_PROMPT_CHARS) -> str:
    """`prompt` cut to at most `limit` characters, an ellipsis marking the cut (not escaped)."""
    return prompt if len(prompt) <= limit else prompt[: limit - 1] + "…"


def generation_caption(gen: Generation) -> str:
    """One escaped HTML line: prompt, ratio, temperature, sample, size, cost."""
    cost = f"${gen.usd_spent:.4f}" + (" (cached)" if gen.cached else "")
    sample = f" · sample {gen.sample}" if gen.sample else ""
    return (
        f"<b>{escape(short_prompt(gen.prompt))}</b><br>"
        f"{escape(gen.aspect_ratio)} · temperature {gen.temperature:g}{sample} · "
        f"{gen.width}×{gen.height} · {escape(cost)}"
    )


def figure_html(data: bytes, mime: str, caption_html: str, width: int) -> str:
    """An `<img>` with inline data and a caption, sized to fit the cell."""
    encoded = base64.b64encode(data).decode("ascii")
    return (
        '<figure style="margin:0;display:inline-block;max-width:100%">'
        f'<img src="data:{escape(mime)};base64,{encoded}" '
        f'style="max-width:min(100%,{int(width)}px);height:auto" alt="">'
        f'<figcaption style="font-size:90%;color:#555">{caption_html}</figcaption></figure>'
    )


def preview_bytes(image: Image.Image, max_px: int = PREVIEW_MAX_PX) -> bytes:
    """A JPEG no larger than `max_px` on its long side: small enough to keep in a notebook.

    A whole-number box reduce first (1024 -> 512 is cheap and looks the same at this size),
    then LANCZOS only for the last, small step: about 3x faster than LANCZOS from full size.
    """
    factor = max(image.size) // max_px
    if factor >= 2:
        image = (
            image.reduce(factor)
            if image.mode in ("RGB", "L")
            else image.convert("RGB").reduce(factor)
        )
    preview = image.convert("RGB")  # a copy: thumbnail() works in place
    preview.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    preview.save(buffer, format="JPEG", quality=PREVIEW_QUALITY, optimize=True)
    return buffer.getvalue()
