"""Microsoft MAI-Image 2.5 (served by the AI/ML API) in Jupyter and in plain scripts.

    import mai_image_nb as mai
    client = mai.Client()          # no AIMLAPI_KEY: the bundled offline simulator
    g = client.generate("a lighthouse at dusk", aspect_ratio="16:9")

`Studio` (the ipywidgets panel), `History`, `Comparison` and `read_params` are imported on
first use, so scripts never load ipywidgets and a bare import stays quick.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import errors
from ._version import __version__
from .client import Client
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
from .generation import Generation
from .params import ASPECT_RATIOS
from .usage import Usage

if TYPE_CHECKING:
    from .comparison import Cell, Comparison
    from .history import History
    from .imagemeta import read_params
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


# Loaded on first use, so `import mai_image_nb` stays light (no ipywidgets, sqlite3 or PNG
# chunk code until a script needs them): name -> the module that defines it.
_LAZY = {
    "Cell": "comparison",
    "Comparison": "comparison",
    "History": "history",
    "read_params": "imagemeta",
    "Studio": "studio",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
