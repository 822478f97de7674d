"""Microsoft MAI-Image 2.5 (served by the AI/ML API) in Jupyter and in plain scripts.

    import mai_image_nb as mai
    client = mai.Client()          # no AIMLAPI_KEY: the bundled offline simulator
    g = client.generate("a lighthouse at dusk", aspect_ratio="16:9")

`Studio` (the ipywidgets panel) is imported on first use, so scripts never load ipywidgets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import errors
from ._version import __version__
from .client import Client
from .comparison import Cell, Comparison
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BudgetExceededError,
    CancelledError,
    MaiImageError,
    RateLimitError,
    ResponseError,
    ValidationError,
)
from .generation import Generation, Usage
from .history import History
from .params import ASPECT_RATIOS
from .pngmeta import read_params

if TYPE_CHECKING:
    from .studio import Studio

__all__ = [
    "ASPECT_RATIOS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BudgetExceededError",
    "CancelledError",
    "Cell",
    "Client",
    "Comparison",
    "Generation",
    "History",
    "MaiImageError",
    "RateLimitError",
    "ResponseError",
    "Studio",
    "Usage",
    "ValidationError",
    "__version__",
    "errors",
    "read_params",
]

# A library never configures logging; this keeps worker threads from printing "No handlers".
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name == "Studio":
        from .studio import Studio

        return Studio
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
