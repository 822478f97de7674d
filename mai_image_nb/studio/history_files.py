"""The History tab's files: Download selected (a zip for this computer) and Export (a folder
on the kernel's machine: PNGs plus indexes).

Both run on the tab's `JobRunner`, so they share its busy state with Delete.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ipywidgets as w

from mai_image_nb.export import export_generations
from mai_image_nb.generation import Generation
from mai_image_nb.history import History

from .downloads import DownloadLink, pngs_zip
from .jobs import JobRunner
from .widgets import Tone, run_file_write

__all__ = ["DEFAULT_EXPORT_FOLDER", "HistoryFiles"]

DEFAULT_EXPORT_FOLDER = "mai_export"


class HistoryFiles:
    """The download and export controls (placed by the tab) and what they do."""

    def __init__(
        self,
        store: History | None,
        jobs: Callable[[], JobRunner],
        selected: Callable[[], list[Generation]],
        show: Callable[[Tone, str], None],
    ) -> None:
        self._store, self._jobs, self._selected, self._show = store, jobs, selected, show
        self.download_button = w.Button(
            description="Download selected (zip)", icon="download", disabled=True,
            layout=w.Layout(width="auto"), tooltip="The selected PNGs, parameters embedded",
        )  # fmt: skip
        self.link = DownloadLink()
        self.folder_box = w.Text(value=DEFAULT_EXPORT_FOLDER, layout=w.Layout(width="160px"))
        self.export_button = w.Button(
            description="Export all", icon="folder-open", layout=w.Layout(width="auto"),
            tooltip="Write PNGs and indexes into a folder of the kernel's machine",
        )  # fmt: skip

    def start_export(self) -> bool:
        """Export the selected images, or all, to the folder given (PNGs plus indexes)."""
        store, jobs = self._store, self._jobs()
        folder = self.folder_box.value.strip()
        if store is None or jobs.busy:
            return False
        if not folder:
            self._show("error", "Type a folder name to export into, e.g. mai_export.")
            return False
        chosen = self._selected()
        count = len(chosen) if chosen else len(store)

        def export() -> Path:
            return export_generations(chosen, folder) if chosen else store.export(folder)

        self._show("busy", f"Exporting {count} images…")
        return jobs.start(
            lambda _cancel: run_file_write(export, f"could not export to {folder}"),
            lambda path: self._show("ok", f"Exported {count} images to {path}"),
        )

    def start_download(self) -> bool:
        """A zip of the selected images' PNGs (parameters embedded), offered as a link."""
        chosen, jobs = self._selected(), self._jobs()
        if not chosen or jobs.busy:
            return False

        def offer(data: bytes) -> None:
            self.link.offer(f"mai-images-{len(chosen)}.zip", data, "application/zip")
            self._show("ok", f"{len(chosen)} images are ready: click the link to save the zip.")

        self._show("busy", f"Preparing {len(chosen)} images…")
        return jobs.start(lambda _cancel: pngs_zip(chosen), offer)
