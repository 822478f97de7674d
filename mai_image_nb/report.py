"""Self-contained HTML pages: a grid's report (`Comparison.to_html`) and an export's gallery.

Both work offline and load nothing from the network: a report embeds its previews as
`data:` URIs; a gallery links the PNGs beside it by relative name. Every text shown
(prompts, errors, parameters) is HTML-escaped. No widgets here.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from PIL import Image

from . import display, previews
from ._files import safe_filename, write_atomic
from ._version import __version__
from .errors import CancelledError, MaiImageError
from .sheet import axis_label, sheet_layout

if TYPE_CHECKING:
    from .comparison import Cell, Comparison
    from .generation import Generation

__all__ = ["comparison_html", "gallery_html", "write_comparison_html"]

PREVIEW_PX = 512  # the long side of an embedded preview
TILE_PX = 200  # how tall a preview shows in the grid
REPEAT_TILE_PX = 130  # ... when repeats sit side by side
PREVIEW_WORKERS = 4  # decoding and shrinking release the GIL: a few threads help

_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 28px 40px; background: #f6f7f9; color: #202124;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.meta { color: #5f6368; margin: 0 0 16px; }
.prompts { margin: 0 0 12px; padding-left: 1.3em; }
.prompts li { margin: 2px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.block { background: #fff; border: 1px solid #dadce0; border-radius: 10px;
  padding: 14px 16px 16px; margin: 16px 0; overflow-x: auto; }
.block h2 { margin: 0 0 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
table.grid { border-collapse: separate; border-spacing: 8px; }
table.grid th { background: #eef0f3; border-radius: 6px; padding: 6px 10px; font-weight: 600;
  vertical-align: middle; text-align: center; white-space: pre-wrap; overflow-wrap: anywhere;
  max-width: 320px; }
table.grid th.row { text-align: left; white-space: nowrap; }
table.grid th.row.prompt { white-space: pre-wrap; min-width: 160px; max-width: 260px; }
table.grid td { vertical-align: top; padding: 0; }
.repeats { display: flex; gap: 8px; }
figure { margin: 0; }
figure img { display: block; height: var(--tile, 200px); width: auto; border-radius: 4px;
  background: #e8eaed; }
figcaption { font-size: 12px; color: #5f6368; margin-top: 3px; }
.failed { width: var(--tile, 200px); height: var(--tile, 200px); border: 2px solid #a51d2a;
  border-radius: 4px; background: #fde8e8; color: #a51d2a; padding: 8px; font-size: 12px;
  overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.failed.cancelled { border-color: #9aa0a6; background: #f1f3f4; color: #5f6368; }
.failed b { display: block; font-size: 14px; margin-bottom: 4px; }
table.data { border-collapse: collapse; background: #fff; font-size: 13px; }
table.data th, table.data td { border: 1px solid #dadce0; padding: 4px 8px; text-align: left;
  vertical-align: top; }
table.data th { background: #eef0f3; }
table.data td.text { max-width: 420px; white-space: pre-wrap; overflow-wrap: anywhere; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid #dadce0; border-radius: 10px; overflow: hidden; }
.card a { display: block; background: #e8eaed; }
.card img { display: block; width: 100%; height: 220px; object-fit: contain; }
.card .text { padding: 8px 10px 10px; font-size: 13px; }
.card .prompt { font-weight: 600; white-space: pre-wrap; overflow-wrap: anywhere;
  display: -webkit-box; -webkit-line-clamp: 4; -webkit-box-orient: vertical; overflow: hidden; }
.card .file { color: #80868b; font-size: 11px; overflow-wrap: anywhere; margin-top: 2px; }
.card .missing { height: 220px; display: flex; align-items: center; justify-content: center;
  color: #5f6368; }
input.filter { font: inherit; padding: 6px 10px; width: min(420px, 100%); margin: 0 0 16px;
  border: 1px solid #dadce0; border-radius: 6px; }
"""


def _esc(value: object) -> str:
    return display.escape(value)


def _usd(value: float | None) -> str:
    """Dollars as text that no MathJax reads as mathematics (`&#36;`, not "$")."""
    return "–" if value is None else f"&#36;{value:.4f}"


def _page(title: str, body: str, script: str = "") -> str:
    script_tag = f"<script>{script}</script>" if script else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing may come from the network, even if a text slipped through escaping.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data: 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head>"
        f'<body class="tex2jax_ignore">{body}{script_tag}</body></html>\n'
    )


def _preview_uri(gen: Generation) -> str:
    """A ≤ 512 px JPEG of `gen` as a data: URI (decoded here, not kept by the Generation)."""
    try:
        with Image.open(io.BytesIO(gen.data)) as image:
            image.draft("RGB", (PREVIEW_PX, PREVIEW_PX))  # JPEG: decode at a fraction
            jpeg = previews.preview_bytes(image, PREVIEW_PX)
    except (OSError, SyntaxError, Image.DecompressionBombError, MaiImageError):
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _previews(cells: Sequence[Cell]) -> dict[str, str]:
    """Preview URIs by generation id, made on a few threads."""
    gens = {c.generation.id: c.generation for c in cells if c.generation is not None}
    with cf.ThreadPoolExecutor(max_workers=PREVIEW_WORKERS) as pool:
        return dict(zip(gens, pool.map(_preview_uri, gens.values()), strict=True))


def _figure(cell: Cell | None, uri: str) -> str:
    if cell is None:
        return '<div class="failed cancelled"><b>not run</b></div>'
    if cell.generation is None:
        cancelled = isinstance(cell.error, CancelledError)
        kind = "cancelled" if cancelled else "failed"
        return (
            f'<div class="failed{" cancelled" if cancelled else ""}"><b>{kind}</b>'
            f"{_esc(cell.error)}</div>"
        )
    gen = cell.generation
    title = (
        f"{gen.prompt}\n{gen.aspect_ratio} · temperature {gen.temperature:g} · "
        f"sample {gen.sample} · {gen.width}×{gen.height}"
    )
    caption = f"#{cell.repeat + 1} · {_usd(gen.usd_spent)}" + (" · cached" if gen.cached else "")
    image = (
        f'<img src="{uri}" alt="{_esc(title)}" title="{_esc(title)}">'
        if uri
        else '<div class="failed"><b>image unreadable</b></div>'
    )
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def comparison_html(
    comparison: Comparison, *, rows: str = "aspect_ratio", cols: str = "temperature"
) -> str:
    """The report page of `comparison` (see `Comparison.to_html`), laid out as its sheet."""
    lay = sheet_layout(comparison, rows, cols)
    index = {(c.prompt, c.aspect_ratio, c.temperature, c.repeat): c for c in comparison.cells}
    uris = _previews(comparison.cells)
    done = sum(1 for c in comparison.cells if c.ok)
    failed = len(comparison.cells) - done
    models = sorted({c.generation.model for c in comparison.cells if c.generation is not None})
    services = sorted({c.generation.service for c in comparison.cells if c.generation})
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"<h1>{'Prompt' if len(comparison.prompts) == 1 else 'Prompts'}</h1>",
        '<ol class="prompts">',
        *(f"<li>{_esc(p)}</li>" for p in comparison.prompts),
        "</ol>",
        f'<p class="meta">{len(comparison.prompts)} prompt(s) × '
        f"{len(comparison.aspect_ratios)} aspect ratio(s) × "
        f"{len(comparison.temperatures)} temperature(s) × {comparison.repeats} repeat(s) · "
        f"{done} of {len(comparison.cells)} cells done"
        + (f", {failed} failed" if failed else "")
        + f" · {_usd(comparison.total_usd)} in all · {_usd(comparison.paid_usd)} paid this run"
        + (f" · model {_esc(', '.join(models))}" if models else "")
        + (f" · {_esc(', '.join(services))}" if services else "")
        + f" · report made {made} by mai_image_nb {_esc(__version__)}</p>",
    ]
    for block in lay.blocks:
        parts.append('<section class="block">')
        if block:
            title = " · ".join(
                f"prompt: {value}" if axis == "prompt" else axis_label(axis, value)
                for axis, value in block.items()
            )
            parts.append(f"<h2>{_esc(title)}</h2>")
        parts.append('<table class="grid"><thead><tr><th></th>')
        for col in lay.values[cols]:
            parts.append(f'<th scope="col">{_esc(axis_label(cols, col))}</th>')
        parts.append("</tr></thead><tbody>")
        for row in lay.values[rows]:
            kind = "row prompt" if rows == "prompt" else "row"
            parts.append(f'<tr><th scope="row" class="{kind}">{_esc(axis_label(rows, row))}</th>')
            for col in lay.values[cols]:
                figures = []
                for k in range(lay.inner):
                    cell = index.get(lay.place(block, row, col, k))
                    uri = uris.get(cell.generation.id, "") if cell and cell.generation else ""
                    figures.append(_figure(cell, uri))
                parts.append(f'<td><div class="repeats">{"".join(figures)}</div></td>')
            parts.append("</tr>")
        parts.append("</tbody></table></section>")
    parts.append(_variation_table(comparison.variation()))
    parts.append(_cells_table(comparison.to_records()))
    title = comparison.prompts[0] + (
        f" (+{len(comparison.prompts) - 1} more)" if len(comparison.prompts) > 1 else ""
    )
    tile_px = TILE_PX if lay.inner == 1 else REPEAT_TILE_PX
    return _page(f"Grid: {title}", f'<div style="--tile:{tile_px}px">{"".join(parts)}</div>')


def _variation_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    lines = [
        "<h2>Variation between repeats</h2>",
        '<p class="meta">Mean absolute pixel difference of each pair of repeats at 64×64 '
        "greyscale, divided by 255 and averaged over the pairs: 0 = identical.</p>",
        '<table class="data"><tr><th>prompt</th><th>aspect ratio</th><th>temperature</th>'
        "<th>repeats</th><th>variation</th></tr>",
    ]
    for row in rows:
        lines.append(
            f'<tr><td class="text">{_esc(row["prompt"])}</td><td>{_esc(row["aspect_ratio"])}</td>'
            f'<td class="num">{row["temperature"]:g}</td><td class="num">{row["n"]}</td>'
            f'<td class="num">{row["variation"]:.4f}</td></tr>'
        )
    lines.append("</table>")
    return "".join(lines)


_CELL_COLUMNS = (
    ("prompt", "prompt"), ("aspect_ratio", "aspect ratio"), ("temperature", "temperature"),
    ("repeat", "repeat"), ("ok", "ok"), ("id", "id"), ("width", "width"), ("height", "height"),
    ("usd_spent", "cost"), ("cached", "cached"), ("elapsed_s", "seconds"),
    ("created", "created"), ("error", "error"),
)  # fmt: skip


def _cells_table(records: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{_esc(label)}</th>" for _, label in _CELL_COLUMNS)
    lines = ["<h2>Every cell</h2>", f'<table class="data"><tr>{head}</tr>']
    for record in records:
        cells = []
        for key, _ in _CELL_COLUMNS:
            value = record.get(key)
            if key == "usd_spent":
                cells.append(f'<td class="num">{_usd(value)}</td>')
            elif key == "elapsed_s" and value is not None:
                cells.append(f'<td class="num">{value:.2f}</td>')
            elif isinstance(value, bool):
                cells.append(f"<td>{'yes' if value else 'no'}</td>")
            elif key == "created":
                cells.append(f'<td class="num">{_esc(_when(value) if value else "")}</td>')
            elif isinstance(value, (int, float)):
                cells.append(f'<td class="num">{_esc(f"{value:g}")}</td>')
            else:
                shown = "" if value is None else value
                cells.append(f'<td class="text">{_esc(shown)}</td>')
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</table>")
    return "".join(lines)


def write_comparison_html(
    comparison: Comparison,
    path: str | os.PathLike[str],
    *,
    rows: str = "aspect_ratio",
    cols: str = "temperature",
) -> Path:
    """Write `comparison_html` at `path` (".html" added when missing), whole or not at all.

    An existing folder, or a path ending in a separator, gets a file named from the
    first prompt. Missing parent folders are created.
    """
    page = comparison_html(comparison, rows=rows, cols=cols).encode("utf-8")
    target = Path(path).expanduser()
    if target.is_dir() or str(path).endswith(("/", os.sep)):
        target = target / safe_filename("grid", comparison.prompts[0], ext="html")
    elif target.suffix.lower() not in (".html", ".htm"):
        target = target.with_name(target.name + ".html")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, page)
    return target


_FILTER_SCRIPT = """
const box = document.querySelector("input.filter");
box.addEventListener("input", () => {
  const q = box.value.toLowerCase();
  for (const card of document.querySelectorAll(".card")) {
    card.hidden = q && !card.dataset.prompt.includes(q);
  }
});
"""


def _when(created: object) -> str:
    """An ISO timestamp as "2026-11-30 20:59 UTC"; anything else as it is."""
    try:
        moment = datetime.fromisoformat(str(created))
    except ValueError:
        return str(created or "")
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo else "")


def gallery_html(records: Iterable[Mapping[str, Any]], *, title: str = "Exported images") -> str:
    """An offline gallery of exported records (each with its image `file` beside the page)."""
    records = list(records)
    total = sum(r.get("usd_spent") or 0.0 for r in records)
    cards = []
    for record in records:
        name = record.get("file")
        prompt = str(record.get("prompt", ""))
        alt = _esc(prompt)
        if name:
            href = _esc(quote(str(name)))
            picture = f'<a href="{href}"><img src="{href}" alt="{alt}" loading="lazy"></a>'
        else:
            picture = '<div class="missing">image file missing</div>'
        sample = record.get("sample") or 0
        temperature = record.get("temperature")
        shown_temperature = f"{temperature:g}" if isinstance(temperature, (int, float)) else ""
        details = (
            f"{_esc(record.get('aspect_ratio'))} · temperature {_esc(shown_temperature)}"
            + (f" · sample {_esc(sample)}" if sample else "")
            + f" · {_esc(record.get('width'))}×{_esc(record.get('height'))}"
            + f" · {_usd(record.get('usd_spent'))}<br>{_esc(_when(record.get('created')))}"
            + (f'<div class="file">{_esc(name)}</div>' if name else "")
        )
        cards.append(
            f'<div class="card" data-prompt="{_esc(prompt.lower())}">{picture}'
            f'<div class="text"><div class="prompt">{alt}</div>{details}</div></div>'
        )
    body = (
        f"<h1>{_esc(title)}</h1>"
        f'<p class="meta">{len(records)} image(s) · {_usd(total)} in all · newest first · '
        "each PNG carries its parameters (mai_image_nb.read_params reads them back)</p>"
        '<input class="filter" type="search" placeholder="Filter by prompt" '
        'aria-label="Filter by prompt">'
        f'<div class="cards">{"".join(cards)}</div>'
    )
    return _page(title, body, _FILTER_SCRIPT)
