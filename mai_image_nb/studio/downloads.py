"""Browser downloads: a file made in the kernel reaches the user's own computer.

Save and Export write into the kernel's folder, which on JupyterHub or a remote kernel is
not the user's disk. A `DownloadLink` holds one prepared file as an `<a download>` link with a
`data:` URL; the user's click on it is an ordinary browser download in JupyterLab, Notebook 7
and Voila (no front-end code). The bytes live in the widget only until the next file replaces
them or `clear()` runs, so a saved notebook does not keep them for long.
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Sequence

import ipywidgets as w

from mai_image_nb import display
from mai_image_nb.generation import Generation

from .widgets import Html, file_name_for

__all__ = ["DownloadLink", "human_size", "pngs_zip", "unique_names"]

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024  # a data: URL larger than this is not offered


def human_size(size: int) -> str:
    """`1.3 MB`, `820 KB`."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


def unique_names(gens: Sequence[Generation]) -> list[str]:
    """A file name per generation, from its prompt and settings, never the same twice."""
    names: list[str] = []
    seen: set[str] = set()
    for gen in gens:
        stem = file_name_for(gen.prompt, suffix="")
        base = f"{stem}-{gen.aspect_ratio.replace(':', 'x')}-t{gen.temperature:g}"
        if gen.sample:
            base += f"-s{gen.sample}"
        name, k = f"{base}.png", 2
        while name in seen:
            name, k = f"{base}-{k}.png", k + 1
        seen.add(name)
        names.append(name)
    return names


def pngs_zip(gens: Sequence[Generation], extra: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """A zip of each generation's full PNG (parameters embedded), plus `extra` files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, gen in zip(unique_names(gens), gens, strict=True):
            archive.writestr(name, gen.png_bytes())
        for name, data in extra:
            archive.writestr(name, data)
    return buffer.getvalue()


class DownloadLink(Html):
    """A prepared file as a download link ("⬇ lighthouse.png · 1.3 MB"); empty until `offer`."""

    def __init__(self) -> None:
        super().__init__("", layout=w.Layout(width="auto"))
        self.add_class("mai-download")
        self.file_name = ""
        self.size = 0

    def offer(self, name: str, data: bytes, mime: str) -> None:
        """Show a link that downloads `data` as `name` when clicked."""
        if len(data) > MAX_DOWNLOAD_BYTES:
            raise ValueError(f"{name} is {human_size(len(data))}: too large to download here")
        url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        self.file_name, self.size = name, len(data)
        esc = display.escape
        self.value = (
            f'<a class="mai-download-link" download="{esc(name)}" href="{url}" '
            f'title="Save {esc(name)} to this computer">⬇ {esc(name)}</a> '
            f'<span class="mai-muted">{human_size(len(data))} · click to save</span>'
        )

    def clear(self) -> None:
        self.file_name, self.size = "", 0
        self.value = ""

    @property
    def data_url(self) -> str:
        """The link's `data:` URL ("" when nothing is offered)."""
        start = self.value.find('href="')
        if start < 0:
            return ""
        start += len('href="')
        return str(self.value[start : self.value.index('"', start)])
