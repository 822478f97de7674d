"""Small pieces shared by the Studio tabs: the stylesheet, status lines, labels and widget walks.

Every text that came from a user or a server passes through `display.escape` here before it
reaches an HTML widget. Only ipywidgets and the core's pure helpers are imported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import ipywidgets as w
import traitlets

from mai_image_nb import _files, display
from mai_image_nb.errors import MaiImageError, ValidationError
from mai_image_nb.params import ASPECT_RATIOS, IMAGE_SIZES

if TYPE_CHECKING:
    from mai_image_nb.generation import Generation

__all__ = [
    "STYLESHEET",
    "ConfirmRow",
    "Html",
    "close_tree",
    "details_html",
    "error_text",
    "field",
    "file_name_for",
    "muted",
    "on_click",
    "one_line",
    "ratio_label",
    "ratio_options",
    "ratio_size",
    "reject_blank_prompt",
    "run_file_write",
    "short_repr",
    "status_html",
    "walk",
]

log = logging.getLogger(__name__)

ERROR_MAX_CHARS = 300  # an error line stays one readable line, however long the message
FILE_SLUG_CHARS = 40  # how much of the prompt a suggested file name keeps
Tone = Literal["idle", "busy", "ok", "error", "warn"]

# Scoped to the panel's root class; Jupyter's theme variables first, plain colours as fallback.
STYLESHEET = """<style>
.mai-studio { max-width: 1000px; gap: 6px; box-sizing: border-box; }
.mai-studio *, .mai-studio *::before, .mai-studio *::after { box-sizing: border-box; }
/* ipywidgets boxes scroll by default: here content is laid out to fit, never scrolled */
.mai-studio .widget-box, .mai-studio .jupyter-widgets.widget-box,
.mai-studio .widget-tab-contents, .mai-studio .widget-html-content, .mai-studio .widget-tab,
.mai-studio .widget-html { overflow: visible; min-width: 0; max-width: 100%; }
.mai-studio .jupyter-widgets:not(.widget-box) { max-width: 100%; }
.mai-studio .widget-textarea, .mai-studio .widget-text, .mai-studio .widget-hslider {
  width: auto; max-width: 100%; }
/* width 100% (set on the widget) plus ipywidgets' side margins would stick out by 2-4 px */
.mai-studio .widget-textarea, .mai-studio .widget-text, .mai-studio .widget-hslider {
  margin-left: 0; margin-right: 0; }
.mai-studio textarea { resize: vertical; }
/* buttons as wide as their label: never "Export 4 selec…" */
.mai-studio .jupyter-button { width: auto; min-width: max-content; max-width: 100%; }
.mai-studio .mai-header { padding:6px 10px;
  border-bottom:1px solid var(--jp-border-color2, #e0e0e0); }
.mai-studio .mai-header-line { display:flex; align-items:center; gap:10px; flex-wrap:wrap; }
.mai-studio .mai-title { font-weight:600; font-size:14px; }
.mai-studio .mai-badge { padding:0 7px; border-radius:10px; font-size:11px; font-weight:600;
  background: var(--jp-layout-color2, #eee); color: var(--jp-ui-font-color1, rgba(0,0,0,.87));
  border: 1px solid var(--jp-brand-color1, #1976d2); }
.mai-studio .mai-badge.mai-api { background:#fdecc8; color:#7a4b00; }
.mai-studio .mai-spend { font-size:12px; color: var(--jp-ui-font-color2, #616161); }
.mai-studio .mai-spend.mai-warn { color: var(--jp-warn-color0, #a15c00);
  color: color-mix(in srgb, var(--jp-warn-color0, #a15c00) 75%, var(--jp-ui-font-color0, #000)); }
.mai-studio .mai-muted { font-size:11px; color: var(--jp-ui-font-color2, #757575); }
.mai-studio .mai-status { font-size:12px; min-height:18px; line-height:1.4; }
.mai-studio .mai-field-note .mai-status { min-height:0; }
/* each tone mixed a quarter toward the theme's text colour: darker on light, lighter on dark,
   so it reads at 4.5:1 and more in both (plain tone first, where color-mix is not known) */
.mai-studio .mai-status-error { color: var(--jp-error-color1, #b3261e);
  color: color-mix(in srgb, var(--jp-error-color1, #b3261e) 75%, var(--jp-ui-font-color0, #000)); }
.mai-studio .mai-status-warn { color: var(--jp-warn-color0, #a15c00);
  color: color-mix(in srgb, var(--jp-warn-color0, #a15c00) 75%, var(--jp-ui-font-color0, #000)); }
.mai-studio .mai-status-ok { color: var(--jp-success-color1, #1e7e34); color: color-mix(
  in srgb, var(--jp-success-color1, #1e7e34) 75%, var(--jp-ui-font-color0, #000)); }
.mai-studio .mai-status-busy { color: var(--jp-ui-font-color1, #333); }
.mai-studio .mai-status-busy { display:flex; align-items:center; }
.mai-studio .mai-spinner { display:inline-block; flex:0 0 auto; width:10px; height:10px;
  margin-right:6px;
  border:2px solid #9e9e9e; border-top-color:transparent; border-radius:50%;
  animation: mai-spin .8s linear infinite; vertical-align:middle; }
@keyframes mai-spin { to { transform: rotate(360deg); } }
.mai-studio .mai-stage { border-radius:8px; padding:8px;
  background: var(--jp-layout-color2, #f5f5f5); }
.mai-studio img.mai-preview { max-width:100%; max-height:420px; width:auto; height:auto;
  object-fit:contain; border-radius:6px; }
.mai-studio img.mai-thumb { max-width:100%; height:auto; border-radius:6px; }
.mai-studio .mai-details, .mai-studio .mai-details .widget-html-content {
  font-size:12px; line-height:1.5; overflow-wrap:anywhere; }
.mai-studio .mai-details b { font-weight:600; }
.mai-studio .mai-code textarea { font-family: var(--jp-code-font-family, monospace);
  font-size:12px; }
.mai-studio .mai-card { border:1px solid var(--jp-border-color2, #e0e0e0); border-radius:8px;
  padding:6px; background: var(--jp-layout-color1, #fff); }
.mai-studio .mai-card.mai-failed { border-color: var(--jp-error-color2, #e8a5a0);
  background: var(--jp-error-color3, #fff6f5); }
.mai-studio .mai-card.mai-selected { border-color: var(--jp-brand-color1, #1976d2);
  box-shadow: 0 0 0 2px var(--jp-brand-color2, #90caf9); }
.mai-studio .mai-caption, .mai-studio .mai-caption .widget-html-content {
  font-size:11px; line-height:1.35; overflow-wrap:anywhere; }
.mai-studio .mai-caption .mai-differs { color: var(--jp-ui-font-color0, #111); }
.mai-studio .mai-ratio .widget-toggle-button, .mai-studio .mai-ratio.widget-box button {
  padding:0 7px; min-width:52px; width:auto; }
.mai-studio .mai-card img.mai-thumb { max-height:220px; width:auto; }
/* after the card rule, one class more: a tall (9:16) thumbnail stays inside its box */
.mai-studio .mai-card .mai-thumb-box { height:150px; width:100%; }
.mai-studio .mai-card .mai-thumb-box img.mai-thumb { max-height:146px; max-width:100%;
  width:auto; }
.mai-studio .mai-side-row img.mai-thumb { max-height:260px; }
.mai-studio img.mai-strip-thumb { max-height:90px; width:auto; border-radius:4px; }
.mai-studio .mai-block-title { font-size:12px; padding-top:4px;
  border-top:1px solid var(--jp-border-color2, #e0e0e0); }
.mai-studio .mai-confirm { background: var(--jp-warn-color3, #fff4e5); border-radius:6px;
  padding:4px 8px; }
.mai-studio .mai-download a { font-weight:600; color: var(--jp-brand-color1, #1976d2); }
.mai-studio .mai-lightbox { padding: 10px; width: 100%;
  background: var(--jp-layout-color1, #fff); border-radius: 10px;
  border: 1px solid var(--jp-border-color1, #bdbdbd); box-shadow: 0 6px 24px rgba(0,0,0,.35); }
.mai-studio .mai-lightbox img.mai-lightbox-image { max-width: 100%;
  max-height: 80vh; width: auto; height: auto; object-fit: contain; align-self: center; }
.mai-studio button.mai-copy { margin-top:4px; }
/* JupyterLab Dark: its second font colour on its second layout colour is 4.2:1; the panel's
   tabs, section headers and text on the stage use the first (4.5:1 and more in both themes) */
.mai-studio .jupyter-widgets.jupyter-widget-tab > .lm-TabBar .lm-TabBar-tab:not(.lm-mod-current),
.mai-studio .jupyter-widget-Collapse-header, .mai-studio .mai-stage .mai-muted {
  color: var(--jp-ui-font-color1, rgba(0,0,0,.87)); }
</style>"""


class Html(w.HTML):  # type: ignore[misc]
    """An `HTML` widget whose value is always MathJax-safe (see `display.no_math`)."""

    @traitlets.validate("value")
    def _no_math(self, proposal: dict[str, str]) -> str:
        return display.no_math(proposal["value"] or "")


_SHAPES = {"1:1": "□", "4:3": "▭", "3:2": "▭", "16:9": "▬", "3:4": "▯", "2:3": "▯", "9:16": "▮"}


def ratio_label(ratio: str) -> str:
    """`16:9 ▬`: the ratio and a small rectangle of its shape."""
    return f"{ratio} {_SHAPES.get(ratio, '')}".strip()


def ratio_options() -> list[tuple[str, str]]:
    """(label, value) pairs for all seven ratios, in the API's order."""
    return [(ratio_label(r), r) for r in ASPECT_RATIOS]


def ratio_size(ratio: str) -> str:
    """The canvas size of `ratio`, e.g. `1376×774` (for tooltips)."""
    width, height = IMAGE_SIZES[ratio]
    return f"{width}×{height}"


def one_line(text: str, limit: int = ERROR_MAX_CHARS) -> str:
    """Whitespace collapsed to single spaces and cut to `limit` characters (not escaped)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def short_repr(value: object, limit: int = 40) -> str:
    """`repr(value)` cut to `limit` characters, keeping its end."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 6] + "…" + text[-4:]


def error_text(exc: BaseException) -> str:
    """A readable one-line message for `exc` (not escaped); validation names the field."""
    if isinstance(exc, ValidationError):
        got = "" if "(got" in exc.allowed else f" (got {short_repr(exc.value)})"
        return one_line(f"{exc.field} must be {exc.allowed}{got}")
    if isinstance(exc, MaiImageError):
        return one_line(str(exc))
    return one_line(f"Unexpected error ({type(exc).__name__}): {exc}")


def reject_blank_prompt(prompt: str) -> None:
    """Refuse a prompt of spaces only (the API would take it; nobody typing one means it).

    Raises:
        ValidationError: naming `prompt`.
    """
    if prompt and not prompt.strip():
        raise ValidationError("prompt", prompt, "some text, not only spaces")


def file_name_for(prompt: str, *, fallback: str = "image", suffix: str = ".png") -> str:
    """A file name made from the prompt: `a-lighthouse-at-dusk.png` (`fallback` when no slug).

    Long prompts are cut at a word boundary (a dash), never in the middle of a word; a
    single first word longer than the limit is kept whole up to the limit.
    """
    slug = _files.slugify(prompt, 4 * FILE_SLUG_CHARS + 1)
    if len(slug) > FILE_SLUG_CHARS:
        cut = slug[: FILE_SLUG_CHARS + 1].rfind("-")
        slug = slug[:cut] if cut > 0 else slug[:FILE_SLUG_CHARS]
    return (slug or fallback) + suffix


def run_file_write(write: Callable[[], Path], failure: str) -> Path:
    """Run a save or an export; the absolute path it wrote.

    Raises:
        MaiImageError: an OSError as one line, `failure` then the system's reason.
    """
    try:
        return write().absolute()
    except OSError as exc:
        raise MaiImageError(f"{failure}: {exc.strerror or exc}") from exc


def status_html(tone: Tone, text: str, *, escaped: bool = False) -> str:
    """The status line's HTML: one escaped line with a tone (colour) and, when busy, a spinner."""
    body = text if escaped else display.escape(one_line(text))
    icon = {
        "busy": '<span class="mai-spinner"></span>',
        "error": "⚠ ",
        "warn": "⚠ ",
        "ok": "✓ ",
        "idle": "",
    }[tone]
    return f'<div class="mai-status mai-status-{tone}">{icon}{body}</div>'


def on_click(button: w.Button, action: Callable[[], object], report: Callable[[str], None]) -> None:
    """Run `action()` on click; any exception becomes one line via `report`, never a traceback.

    (ipywidgets would print a click handler's traceback into whichever cell ran last.)
    """

    def handler(_button: w.Button) -> None:
        try:
            action()
        except Exception as exc:
            log.debug("a click handler failed", exc_info=True)
            report(error_text(exc))

    button.on_click(handler)


def muted(text: str) -> Html:
    """A small grey label (escaped)."""
    return Html(f'<span class="mai-muted">{display.escape(text)}</span>')


def field(label: str, control: w.Widget, *, width: str | None = None) -> w.VBox:
    """A control with a small muted label above it."""
    box = w.VBox([muted(label), control])
    if width is not None:
        box.layout.width = width
    return box


def walk(root: w.Widget) -> Iterator[w.Widget]:
    """Every widget reachable from `root` through its traits (children, layout, style, ...)."""
    seen: set[int] = set()
    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        if not isinstance(item, w.Widget) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for name in item.keys:
            if name.startswith("_"):
                continue
            value = getattr(item, name, None)
            if isinstance(value, (w.Widget, list, tuple)):
                stack.append(value)


def close_tree(root: w.Widget) -> None:
    """Close `root` and every widget reachable from it (layouts and styles included)."""
    for widget in list(walk(root)):
        widget.close()


def details_html(gen: Generation) -> str:
    """The parameters and cost of `gen` as escaped HTML lines."""
    esc = display.escape
    cost = (
        f"from the history, no charge (made for ${gen.usd_spent:.4f})"
        if gen.cached
        else f"${gen.usd_spent:.4f} · {gen.elapsed_s:.2f} s"
    )
    limits = [
        f"{name} {value}"
        for name, value in (
            ("max_tokens", gen.max_tokens),
            ("max_completion_tokens", gen.max_completion_tokens),
        )
        if value is not None
    ]
    sample = f" · sample {gen.sample}" if gen.sample else ""
    made = gen.created.astimezone().strftime("%Y-%m-%d %H:%M")
    return (
        f"<div><b>{esc(display.short_prompt(gen.prompt))}</b></div>"
        f'<div class="mai-muted">{esc(gen.aspect_ratio)} · {gen.width}×{gen.height} · '
        f"temperature {gen.temperature:.2f}{sample}"
        f"{' · ' + esc(', '.join(limits)) if limits else ''}</div>"
        f'<div class="mai-muted">{esc(cost)} · {esc(made)}'
        f" · id {esc(gen.id)}</div>"
    )


class ConfirmRow(w.HBox):  # type: ignore[misc]
    """ "Are you sure?" with Yes and No; hidden until `ask`."""

    def __init__(self, *, yes: str, no: str) -> None:
        self.question = Html()
        self.yes_button = w.Button(description=yes, button_style="danger")
        self.no_button = w.Button(description=no)
        super().__init__(
            [self.question, self.yes_button, self.no_button],
            layout=w.Layout(display="none", grid_gap="8px", align_items="center"),
        )
        self.add_class("mai-confirm")

    def ask(self, question: str, note: str = "") -> None:
        self.question.value = (
            f"<b>{display.escape(question)}</b> "
            f'<span class="mai-muted">{display.escape(note)}</span>'
        )
        self.layout.display = None

    def hide(self) -> None:
        self.layout.display = "none"

    @property
    def asking(self) -> bool:
        return bool(self.layout.display != "none")
