"""`Usage`: what one answer cost, as the service reported it. Plain data, no imports.

Kept apart so the HTTP layer can name a cost without loading Pillow or the display code.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Usage"]


@dataclass(frozen=True)
class Usage:
    """What one image cost, as the service reported it in `meta.usage`."""

    credits_used: float
    usd_spent: float
