"""The offline simulator: a local HTTP server that answers like MAI-Image 2.5 and draws from words.

Its modules use the standard library, Pillow and `mai_image_nb.params` (the image sizes); never
requests or ipywidgets (importing it still loads `mai_image_nb` itself, as any subpackage
does). `python -m mai_image_nb.offline --port 8765` serves a class.
"""

import logging

from .faults import CHAOS_FAULTS, Chaos, Fault
from .render import render_image, render_png
from .schema import RecordedRequest
from .server import OfflineServer

__all__ = [
    "CHAOS_FAULTS",
    "Chaos",
    "Fault",
    "OfflineServer",
    "RecordedRequest",
    "render_image",
    "render_png",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
