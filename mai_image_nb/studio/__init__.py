"""The ipywidgets panel: `Studio` (Generate, Compare and History tabs over one Client).

The only part of the package that imports ipywidgets; `mai_image_nb` loads it on first use.
"""

from __future__ import annotations

from .panel import Studio

__all__ = ["Studio"]
