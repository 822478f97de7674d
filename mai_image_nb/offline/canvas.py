"""The canvas the simulator paints on: the Scene a prompt asks for, dice, lighting, shapes.

Shared by `scenes.py` and `subjects.py`; Pillow and the standard library only.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw

__all__ = ["RGB", "Dice", "Painter", "Scene", "gradient", "mix", "to_rgb"]

RGB = tuple[int, int, int]

_LIGHT: dict[str, tuple[RGB, float]] = {  # every land and subject colour is mixed with this
    "day": ((255, 255, 255), 0.0), "night": ((15, 25, 65), 0.62),
    "sunset": ((255, 120, 60), 0.25), "dawn": ((255, 170, 160), 0.15),
    "storm": ((70, 75, 85), 0.45), "space": ((30, 20, 60), 0.45),
}  # fmt: skip


@dataclass(frozen=True)
class Scene:
    """What a prompt asks for, as far as the simulator understands words."""

    sky: str
    lands: frozenset[str]
    subjects: tuple[str, ...]
    tint: RGB | None
    tint_alpha: float
    subject_colours: tuple[RGB | None, ...]  # one per subject: the colour word just before it


def to_rgb(values: object) -> RGB:
    r, g, b = (max(0, min(255, round(v))) for v in values)  # type: ignore[attr-defined]
    return (r, g, b)


def mix(a: RGB, b: RGB, k: float) -> RGB:
    return to_rgb(a[i] + (b[i] - a[i]) * k for i in range(3))


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big")


class Dice:
    """The prompt's own choices (`base`) plus this call's jitter around them, scaled by temperature.

    Each element of the picture takes its own `sub` dice, so a star count that changes at
    a low temperature does not reshuffle the trees drawn after it.
    """

    def __init__(self, base_key: str, noise_key: str, spread: float) -> None:
        self._keys = (base_key, noise_key)
        self.base = random.Random(_seed(base_key))
        self.noise = random.Random(_seed(noise_key))
        self.spread = spread  # 0 at temperature 0, 1 at temperature 2

    def sub(self, name: str) -> Dice:
        return Dice(f"{self._keys[0]}/{name}", f"{self._keys[1]}/{name}", self.spread)

    def num(self, lo: float, hi: float, jitter: float = 0.5) -> float:
        base = self.base.uniform(lo, hi)
        return base + self.noise.uniform(-1.0, 1.0) * jitter * (hi - lo) * self.spread

    def count(self, lo: int, hi: int) -> int:
        return max(0, round(self.num(lo, hi, jitter=0.6)))

    def chance(self, p: float) -> bool:
        return self.base.random() + self.noise.uniform(-0.5, 0.5) * self.spread < p

    def colour(self, rgb: RGB, amount: float = 70.0) -> RGB:
        return to_rgb(
            c + self.base.uniform(-10, 10) + self.noise.uniform(-1, 1) * amount * self.spread
            for c in rgb
        )


def gradient(size: tuple[int, int], stops: Sequence[tuple[float, RGB]]) -> Image.Image:
    width, height = size
    column = Image.new("RGB", (1, height))
    rows: list[RGB] = []
    for y in range(height):
        f = y / max(1, height - 1)
        j = next((i for i in range(1, len(stops)) if stops[i][0] >= f), len(stops) - 1)
        (f0, c0), (f1, c1) = stops[j - 1], stops[j]
        rows.append(mix(c0, c1, (f - f0) / (f1 - f0) if f1 > f0 else 0.0))
    column.putdata(rows)
    return column.resize((width, height), Image.Resampling.NEAREST)


@lru_cache(maxsize=4)
def _glow_mask(strength_pct: int) -> Image.Image:
    k = strength_pct / 100.0
    lut = [round(255 * k * max(0.0, 1 - v / 128) ** 2) for v in range(256)]
    return Image.radial_gradient("L").point(lut)


class Painter:
    """One canvas being drawn, with the scene's lighting and the dice."""

    def __init__(self, size: tuple[int, int], scene: Scene, dice: Dice) -> None:
        self.w, self.h = size
        self.s = min(size)  # the unit for sizes, so shapes keep their proportions on every ratio
        self.scene, self.dice = scene, dice
        self.img = Image.new("RGB", size)
        self.draw = ImageDraw.Draw(self.img)
        self.horizon = self.h * (0.85 if scene.sky == "space" else dice.num(0.55, 0.66, 0.4))
        self.light_x: float | None = None  # where a low sun or the moon is, for reflections
        self.shore = self.h if scene.lands <= {"sea", "city", "mountains"} else self.h * 0.86

    def lit(self, rgb: RGB) -> RGB:
        colour, k = _LIGHT[self.scene.sky]
        return mix(rgb, colour, k)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGB) -> None:
        rx, ry = max(0.5, rx), max(0.5, ry)
        self.draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)

    def poly(self, points: list[tuple[float, float]], fill: RGB) -> None:
        self.draw.polygon(points, fill=fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: RGB) -> None:
        self.draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=fill)

    def line(self, points: list[tuple[float, float]], fill: RGB, width: float) -> None:
        self.draw.line(points, fill=fill, width=max(1, round(width)))

    def veil(self, points: list[tuple[float, float]], colour: RGB, alpha: float) -> None:
        """A see-through polygon (a light beam), drawn through a mask over its bounding box."""
        x0, y0 = (max(0, int(min(q[i] for q in points))) for i in (0, 1))
        x1, y1 = (int(max(q[i] for q in points)) + 1 for i in (0, 1))
        if x1 <= x0 or y1 <= y0:
            return
        mask = Image.new("L", (x1 - x0, y1 - y0))
        ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in points], fill=round(255 * alpha))
        self.img.paste(colour, (x0, y0), mask)

    def glow(self, cx: float, cy: float, r: float, colour: RGB, strength: float) -> None:
        side = max(2, round(r * 2))
        mask = _glow_mask(round(strength * 100)).resize((side, side), Image.Resampling.BILINEAR)
        self.img.paste(colour, (round(cx - side / 2), round(cy - side / 2)), mask)
