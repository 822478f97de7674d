"""The class gallery: images the gateway passed on, kept in the folder, and their previews.

Saving happens on one background thread, and only once the student has the answer, so
the answer never waits for it nor shares the interpreter with it: the answer's base64 image
is decoded, or its URL fetched (without the key), checked, and written as
`gallery/<request id>.<format>` (the ledger row's id names the file).

Over a term the gallery is what grows. It stops keeping images while the disk's free space
is under a reserve (a tenth of the disk, at most `RESERVE_MAX_BYTES`), so the ledger, which
must write before every request, never meets a disk the gallery filled; it starts again
once space is freed. Each change is logged once.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import queue
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from mai_image_nb import transport
from mai_image_nb.errors import MaiImageError

if TYPE_CHECKING:
    from .upstream import Upstream

__all__ = ["GALLERY_DIR", "PREVIEW_PX", "Gallery"]

log = logging.getLogger("mai_image_nb.classroom")

GALLERY_DIR = "gallery"
PREVIEW_PX = 256
QUEUE_MAX = 256  # answers waiting to be saved; beyond this the gallery skips one (logged)
PREVIEW_CACHE = 64
RESERVE_MAX_BYTES = 512 * 2**20  # free space left to the ledger (or a tenth of a smaller disk)
_STOP = object()


class Gallery:
    """Saves answered images in the background and serves small previews of them."""

    def __init__(self, folder: Path, upstream: Upstream) -> None:
        self.folder = folder / GALLERY_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self._upstream = upstream
        self._jobs: queue.Queue[object] = queue.Queue(QUEUE_MAX)
        self._previews: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._promised = 0  # images promised (answers on their way) and not queued yet
        self._queued_all = threading.Condition()
        self.paused = False  # True while the disk is under its reserve (images not kept)
        self._thread = threading.Thread(target=self._run, name="classroom-gallery", daemon=True)
        self._thread.start()

    def keep(self, row_id: int, answer: object) -> None:
        """Queue the image of a 2xx answer (its parsed JSON) for saving; never blocks."""
        try:
            self._jobs.put_nowait((row_id, answer))
        except queue.Full:
            log.warning("gallery: too many images waiting; request %d's is not kept", row_id)

    def promise(self, row_id: int, answer: object) -> Callable[[], None]:
        """Count an answer's image as coming (`wait_idle` waits for it) and return the call
        that queues it: the gateway calls that once the student has the answer."""
        with self._queued_all:
            self._promised += 1

        def queue_it() -> None:
            try:
                self.keep(row_id, answer)
            finally:
                with self._queued_all:
                    self._promised -= 1
                    self._queued_all.notify_all()

        return queue_it

    def close(self, timeout_s: float = 10.0) -> bool:
        """Save what is queued, then stop; True when the thread ended in time."""
        self._jobs.put(_STOP)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def wait_idle(self) -> None:
        """Block until every promised or queued image is saved (tests and benchmarks)."""
        with self._queued_all:
            self._queued_all.wait_for(lambda: self._promised == 0)
        self._jobs.join()

    def find(self, row_id: int) -> Path | None:
        """The kept image of request `row_id`, if there is one."""
        for ext in ("png", "jpg", "webp"):
            path = self.folder / f"{int(row_id)}.{ext}"
            if path.is_file():
                return path
        return None

    def preview(self, row_id: int) -> bytes | None:
        """A PNG at most PREVIEW_PX on its longer side, or None when there is no image."""
        with self._lock:
            cached = self._previews.get(row_id)
        if cached is not None:
            return cached
        path = self.find(row_id)
        if path is None:
            return None
        try:
            with Image.open(path) as image:
                image.thumbnail((PREVIEW_PX, PREVIEW_PX))
                out = io.BytesIO()
                image.convert("RGB").save(out, format="PNG")
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        data = out.getvalue()
        with self._lock:
            self._previews[row_id] = data
            while len(self._previews) > PREVIEW_CACHE:
                self._previews.popitem(last=False)
        return data

    def _run(self) -> None:
        while True:
            job: Any = self._jobs.get()
            try:
                if job is _STOP:
                    return
                row_id, answer = job
                self._save(row_id, answer)
            except Exception:  # the gallery must outlive one bad image
                log.warning("gallery: an image could not be kept", exc_info=True)
            finally:
                self._jobs.task_done()

    def _save(self, row_id: int, answer: object) -> None:
        data = self._image_bytes(answer)
        if data is None:
            return
        image_format = _image_format(data)
        if image_format is None or len(data) > transport.MAX_IMAGE_BYTES:
            log.info("gallery: request %d's answer is not an image we keep", row_id)
            return
        if not self._room_for(len(data)):
            return
        _write_bytes(self.folder / f"{row_id}.{image_format}", data)

    def _room_for(self, size: int) -> bool:
        """Whether `size` more bytes leave the reserve free; logs when that changes."""
        usage = shutil.disk_usage(self.folder)
        paused = usage.free - size < min(RESERVE_MAX_BYTES, usage.total // 10)
        if paused != self.paused:
            self.paused = paused
            if paused:
                log.warning("gallery: the disk of %s is nearly full (%d MB free): images are "
                            "not kept until space is freed; the ledger goes on", self.folder,
                            usage.free // 2**20)  # fmt: skip
            else:
                log.warning("gallery: there is space again; images are kept")
        return not paused

    def _image_bytes(self, answer: object) -> bytes | None:
        try:
            first = answer["data"][0]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
        if not isinstance(first, dict):
            return None
        b64, url = first.get("b64_json"), first.get("url")
        if isinstance(b64, str) and b64:
            try:
                return base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                return None
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            try:
                return self._upstream.download(url)
            except MaiImageError as exc:
                log.info("gallery: image download failed: %s", exc)
        return None


def _image_format(data: bytes) -> str | None:
    """png, jpg or webp from the first bytes (previews are drawn by Pillow, which checks more)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
