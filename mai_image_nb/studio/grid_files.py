"""The Compare grid's files: Save grid (into the kernel's folder) and Download all (a zip).

Both run on the tab's `JobRunner`, so they share its busy state with Run and Retry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import ipywidgets as w

from mai_image_nb.comparison import Comparison

from .downloads import DownloadLink, pngs_zip
from .jobs import JobRunner
from .widgets import Tone, run_file_write

__all__ = ["GridFiles"]


class GridFiles(w.VBox):  # type: ignore[misc]
    """A file name, Save grid, Download all (zip) and the prepared download link."""

    def __init__(
        self,
        jobs: Callable[[], JobRunner],
        comparison: Callable[[], Comparison | None],
        show: Callable[[Tone, str], None],
    ) -> None:
        self._jobs, self._comparison, self._show = jobs, comparison, show
        auto = w.Layout(width="auto")
        self.name_box = w.Text(placeholder="grid.png", layout=w.Layout(width="220px"))
        self.save_button = w.Button(
            description="Save grid", icon="save", disabled=True, layout=auto
        )
        self.download_button = w.Button(
            description="Download all (zip)", icon="download", disabled=True,
            layout=w.Layout(width="auto"),
            tooltip="Every image's PNG with its parameters, and the contact sheet, in one zip",
        )  # fmt: skip
        self.link = DownloadLink()
        super().__init__(
            [
                w.HBox(
                    [self.name_box, self.save_button, self.download_button],
                    layout=w.Layout(grid_gap="6px", align_items="center", flex_flow="row wrap"),
                ),
                self.link,
            ]
        )

    def enable(self, on: bool) -> None:
        self.save_button.disabled = self.download_button.disabled = not on

    def start_save(self) -> bool:
        """Save the contact sheet (into the kernel's folder) as a PNG carrying the parameters."""
        comparison, jobs = self._comparison(), self._jobs()
        if comparison is None or jobs.busy:
            return False
        name = self.name_box.value.strip()
        if not name:
            self._show("error", "Type a file name, e.g. grid.png.")
            return False
        self._show("busy", "Saving the grid…")
        return jobs.start(
            lambda _cancel: run_file_write(
                partial(comparison.save, name), f"could not save {name}"
            ),
            lambda path: self._show("ok", f"Saved to {path}"),
        )

    def start_download(self) -> bool:
        """Prepare a zip of every image's PNG and the sheet, offered as a download link."""
        comparison, jobs = self._comparison(), self._jobs()
        if comparison is None or jobs.busy:
            return False
        sheet_name = self.name_box.value.strip() or "grid.png"
        gens = [c.generation for c in comparison.cells if c.generation is not None]

        def build(_cancel: threading.Event) -> bytes:
            return pngs_zip(gens, [(sheet_name, comparison.png_bytes())])

        def offer(data: bytes) -> None:
            name = sheet_name.removesuffix(".png") + ".zip"
            self.link.offer(name, data, "application/zip")
            self._show("ok", f"{len(gens)} images and the sheet are ready: click the link.")

        self._show("busy", "Preparing the zip…")
        return jobs.start(build, offer)
