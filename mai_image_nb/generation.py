"""`Generation`: one image and what made it, with its caption and how it shows in Jupyter.

The image bytes are kept exactly as the service sent them; `.image` decodes them on
demand and keeps only a weak reference, so caches of generations hold encoded bytes,
never pixels. Records read from the history read their bytes from disk only when used.
"""

from __future__ import annotations

import copy
import io
import os
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from . import display
from .params import Params
from .usage import Usage

__all__ = ["Generation", "Usage", "generation_caption"]

# Modes a browser shows from a PNG as they are; any other (CMYK, 16-bit, ...) is converted.
_PNG_DISPLAY_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})


def generation_caption(gen: Generation) -> str:
    """One escaped HTML line: prompt, ratio, temperature, sample, size, cost."""
    cost = f"${gen.usd_spent:.4f}" + (" (cached)" if gen.cached else "")
    sample = f" · sample {gen.sample}" if gen.sample else ""
    return (
        f"<b>{display.escape(display.short_prompt(gen.prompt))}</b><br>"
        f"{display.escape(gen.aspect_ratio)} · temperature {gen.temperature:g}{sample} · "
        f"{gen.width}×{gen.height} · {display.escape(cost)}"
    )


class Generation:
    """One generated image with the parameters, cost and timing that go with it."""

    def __init__(
        self,
        *,
        id: str,
        params: Params,
        service: str,
        created: datetime,
        width: int,
        height: int,
        image_format: str,
        url: str | None,
        usage: Usage | None,
        elapsed_s: float,
        cached: bool = False,
        data: bytes | None = None,
        load_data: Callable[[], bytes] | None = None,
    ) -> None:
        if (data is None) == (load_data is None):
            raise TypeError("give exactly one of data= and load_data=")
        self.id = id
        self.params = params
        self.service = service
        self.created = created
        self.width = width
        self.height = height
        self.image_format = image_format
        self.url = url
        self.usage = usage
        self.elapsed_s = elapsed_s
        self.cached = cached
        self._data = data
        self._load_data = load_data
        self._image: weakref.ref[Image.Image] | None = None  # never keeps pixels alive
        self._lock = threading.Lock()

    # The parameters, as flat attributes (API.md).
    @property
    def prompt(self) -> str:
        return self.params.prompt

    @property
    def aspect_ratio(self) -> str:
        return self.params.aspect_ratio

    @property
    def temperature(self) -> float:
        return self.params.temperature

    @property
    def max_tokens(self) -> int | None:
        return self.params.max_tokens

    @property
    def max_completion_tokens(self) -> int | None:
        return self.params.max_completion_tokens

    @property
    def sample(self) -> int:
        return self.params.sample

    @property
    def model(self) -> str:
        return self.params.model

    @property
    def usd_spent(self) -> float:
        """The reported cost in USD, 0.0 when the service reported none."""
        return self.usage.usd_spent if self.usage else 0.0

    def _data_locked(self) -> bytes:
        """The bytes, read from disk on first use; the caller holds `self._lock`."""
        if self._data is None:
            assert self._load_data is not None
            self._data = self._load_data()
        return self._data

    @property
    def data(self) -> bytes:
        """The encoded image exactly as received (PNG, JPEG or WebP).

        Raises:
            MaiImageError: a record from the history whose image file is missing or unreadable.
        """
        with self._lock:
            return self._data_locked()

    @property
    def image(self) -> Image.Image:
        """The decoded image: the same object while any caller holds it, else decoded again.

        Raises:
            MaiImageError: a record from the history whose image file is missing or unreadable.
        """
        with self._lock:
            image = self._image() if self._image is not None else None
            if image is None:
                image = Image.open(io.BytesIO(self._data_locked()))
                image.load()
                self._image = weakref.ref(image)
            return image

    def as_cached(self) -> Generation:
        """The same record, marked as answered from the cache (bytes and image shared so far)."""
        clone = copy.copy(self)
        clone.cached = True
        clone._lock = threading.Lock()
        return clone

    def to_dict(self) -> dict[str, Any]:
        """Everything but the pixels, JSON-safe."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "max_completion_tokens": self.max_completion_tokens,
            "sample": self.sample,
            "model": self.model,
            "service": self.service,
            "created": self.created.isoformat(),
            "width": self.width,
            "height": self.height,
            "image_format": self.image_format,
            "url": self.url,
            "credits_used": self.usage.credits_used if self.usage else None,
            "usd_spent": self.usage.usd_spent if self.usage else None,
            "elapsed_s": self.elapsed_s,
            "cached": self.cached,
        }

    def png_bytes(self) -> bytes:
        """The image as a PNG carrying the parameters in text chunks (what `save` writes).

        Raises:
            MaiImageError: a record from the history whose image file is missing or unreadable.
        """
        from . import pngmeta  # the PNG chunk code loads only when a PNG is written

        return pngmeta.embed_params(self.data, self.to_dict())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the image with its parameters embedded; `read_params` reads them back.

        The suffix picks the format: ".png" (also when there is none: ".png" is added),
        ".jpg"/".jpeg" or ".webp". A folder (or a path ending in "/") gets
        `<id>-<prompt slug>.png`; missing parent folders are created. The file appears
        whole or not at all. Returns the path written.

        Raises:
            ValidationError: the suffix names another image format (.gif, .tiff, ...).
            MaiImageError: a record from the history whose image file is missing or unreadable.
            OSError: the file cannot be written (the message names the path).
        """
        from . import imagemeta

        return imagemeta.save_image(path, self.data, self.to_dict(), name=(self.id, self.prompt))

    # Jupyter display: one image output plus an HTML caption, so a saved notebook holds the
    # image once and static exports (nbconvert, GitHub) still show it.
    def _repr_png_(self) -> bytes:
        if self.image_format == "png":
            with Image.open(io.BytesIO(self.data)) as probe:
                if probe.mode in _PNG_DISPLAY_MODES:
                    return self.data
        image = self.image
        if image.mode not in _PNG_DISPLAY_MODES:
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        """A self-contained figure (image and caption), for front ends other than IPython's."""
        return display.figure_html(
            self._repr_png_(), "image/png", generation_caption(self), self.width
        )

    def _ipython_display_(self) -> None:
        display.show_once(self._repr_png_(), generation_caption(self), repr(self), self.width)

    def __repr__(self) -> str:
        return (
            f"<Generation {self.id} {self.aspect_ratio} {self.width}x{self.height} "
            f"temperature={self.temperature:g} sample={self.sample} "
            f"${self.usd_spent:.4f}{' cached' if self.cached else ''} prompt={self.prompt[:40]!r}>"
        )
