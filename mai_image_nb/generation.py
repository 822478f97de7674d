"""`Generation` (one image and what made it) and `Usage` (what it cost).

The image bytes are kept exactly as the service sent them; decoding to a
`PIL.Image` happens on first use of `.image`, and for records read from the
history the bytes themselves are read from disk only then.
"""

from __future__ import annotations

import copy
import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from . import display
from .params import Params

__all__ = ["Generation", "Usage"]


@dataclass(frozen=True)
class Usage:
    """What one image cost, as the service reported it in `meta.usage`."""

    credits_used: float
    usd_spent: float


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
        self._image: Image.Image | None = None
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
        """The decoded image (decoded once, on first use).

        Raises:
            MaiImageError: a record from the history whose image file is missing or unreadable.
        """
        with self._lock:
            if self._image is None:
                image = Image.open(io.BytesIO(self._data_locked()))
                image.load()
                self._image = image
            return self._image

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
        """Write a PNG whose text chunks carry the parameters; `read_params` reads them back.

        The file appears whole or not at all (temporary file, then rename); ".png" is
        added to a path without it. Returns the path written.

        Raises:
            MaiImageError: a record from the history whose image file is missing or unreadable.
            OSError: the file cannot be written.
        """
        from . import pngmeta

        return pngmeta.save_png(path, self.png_bytes())

    # Jupyter display: a real image output, so static exports (nbconvert, GitHub) show it.
    def _repr_png_(self) -> bytes:
        if self.image_format == "png":
            return self.data
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        return display.figure_html(
            self._repr_png_(), "image/png", display.generation_caption(self), self.width
        )

    def __repr__(self) -> str:
        return (
            f"<Generation {self.id} {self.aspect_ratio} {self.width}x{self.height} "
            f"temperature={self.temperature:g} sample={self.sample} "
            f"${self.usd_spent:.4f}{' cached' if self.cached else ''} prompt={self.prompt[:40]!r}>"
        )
