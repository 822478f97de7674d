"""Draw the simulator's pictures: prompt words pick sky, land, subjects and tint.

Temperature jitters what the words chose. Pillow shapes only, no per-pixel loops (tens of ms).
"""

from __future__ import annotations

import hashlib
import io
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from mai_image_nb.params import IMAGE_SIZES

__all__ = ["Scene", "canvas_size", "encode_png", "read_prompt", "render_image", "render_png"]

RGB = tuple[int, int, int]

MIN_SIDE_PX = 8
PNG_COMPRESS_LEVEL = 1  # flat shapes compress well even at level 1; higher levels cost 3-5x time
CAPTION_MIN_HEIGHT_PX = 64  # smaller canvases get no caption: it could not be read
TINT_ALPHA = 0.3  # one colour word; each further one adds TINT_ALPHA_STEP, up to TINT_ALPHA_MAX
TINT_ALPHA_STEP = 0.06
TINT_ALPHA_MAX = 0.45
MAX_SUBJECTS = 2

COLOURS: dict[str, RGB] = {
    "red": (220, 30, 40), "crimson": (180, 20, 50), "scarlet": (230, 40, 30),
    "orange": (245, 130, 20), "amber": (255, 170, 0), "yellow": (245, 220, 40),
    "gold": (230, 180, 40), "golden": (230, 180, 40), "green": (40, 170, 70),
    "emerald": (20, 150, 90), "lime": (150, 220, 50), "teal": (20, 140, 140),
    "cyan": (40, 210, 230), "turquoise": (50, 200, 190), "blue": (40, 90, 220),
    "azure": (60, 150, 240), "navy": (20, 30, 110), "purple": (130, 50, 180),
    "violet": (140, 80, 220), "lavender": (180, 160, 230), "magenta": (220, 40, 170),
    "pink": (245, 130, 180), "brown": (130, 80, 40), "white": (245, 245, 245),
    "black": (15, 15, 20), "grey": (128, 128, 128), "gray": (128, 128, 128),
    "silver": (190, 195, 205),
}  # fmt: skip
_SKY_WORDS = {
    "night": "night midnight starry stars moon moonlit moonlight nocturnal",
    "sunset": "sunset sunsets dusk evening twilight sundown",
    "dawn": "dawn sunrise morning daybreak",
    "storm": "storm stormy rain rainy thunder thunderstorm lightning cloudy overcast fog foggy",
    "space": "space galaxy cosmos cosmic nebula planet planets universe",
}
_LAND_WORDS = {
    "sea": "sea seas ocean oceans coast coastal harbor harbour lake waves wave bay shore "
    "seaside river water island",
    "beach": "beach beaches",
    "forest": "forest forests woods woodland jungle trees pines pine",
    "city": "city cities skyline town street streets buildings urban downtown skyscraper "
    "skyscrapers metropolis neon",
    "snow": "snow snowy winter ice icy frozen blizzard snowfall snowflakes",
    "desert": "desert sand sandy dunes dune cactus sahara",
    "mountains": "mountain mountains hills hill alps peak peaks alpine valley",
    "meadow": "meadow field fields grass park garden countryside farm",
}
_SUBJECT_WORDS = {
    "lighthouse": "lighthouse lighthouses", "cat": "cat cats kitten kitty",
    "tree": "tree oak", "house": "house houses cabin cottage home hut barn",
    "boat": "boat boats ship ships sailboat yacht sail sailing",
    "car": "car cars truck taxi", "person": "person man woman girl boy child people astronaut",
    "bird": "bird birds seagull seagulls eagle", "flower": "flower flowers rose roses tulips",
    "balloon": "balloon balloons", "rocket": "rocket spaceship", "castle": "castle palace",
}  # fmt: skip
_WORD_RE = re.compile(r"[a-z]+")


def _table(words: dict[str, str]) -> dict[str, str]:
    return {word: key for key, text in words.items() for word in text.split()}


_SKY_OF, _LAND_OF, _SUBJECT_OF = _table(_SKY_WORDS), _table(_LAND_WORDS), _table(_SUBJECT_WORDS)
_SKIES: dict[str, list[tuple[float, RGB]]] = {
    "day": [(0, (60, 120, 205)), (1, (175, 215, 245))],
    "night": [(0, (6, 10, 30)), (0.7, (20, 30, 70)), (1, (45, 55, 100))],
    "sunset": [(0, (45, 40, 110)), (0.45, (200, 90, 110)), (0.8, (250, 150, 80)),
               (1, (255, 205, 120))],
    "dawn": [(0, (110, 150, 215)), (0.6, (235, 180, 190)), (1, (255, 215, 170))],
    "storm": [(0, (40, 44, 52)), (1, (105, 110, 120))],
    "space": [(0, (2, 2, 10)), (0.6, (20, 10, 45)), (1, (45, 15, 70))],
}  # fmt: skip
_LIGHT: dict[str, tuple[RGB, float]] = {  # every land and subject colour is mixed with this
    "day": ((255, 255, 255), 0.0), "night": ((15, 25, 65), 0.62),
    "sunset": ((255, 120, 60), 0.25), "dawn": ((255, 170, 160), 0.15),
    "storm": ((70, 75, 85), 0.45), "space": ((30, 20, 60), 0.45),
}  # fmt: skip
_GROUNDS: dict[str, tuple[RGB, RGB]] = {  # in order of precedence when several are named
    "snow": ((235, 240, 250), (195, 210, 235)), "desert": ((235, 200, 130), (200, 150, 80)),
    "beach": ((240, 220, 170), (215, 190, 130)), "forest": ((60, 110, 55), (25, 70, 30)),
    "city": ((90, 90, 100), (55, 55, 65)), "mountains": ((100, 140, 80), (60, 100, 50)),
    "meadow": ((110, 170, 80), (45, 110, 40)), "lunar": ((120, 120, 130), (70, 70, 80)),
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


def read_prompt(prompt: str) -> Scene:
    """Pick the sky, lands, subjects and colours named in `prompt` (first mention wins)."""
    words = _WORD_RE.findall(prompt.lower())
    skies = [_SKY_OF[w] for w in words if w in _SKY_OF]
    lands = frozenset(_LAND_OF[w] for w in words if w in _LAND_OF)
    colours = [COLOURS[w] for w in words if w in COLOURS]
    subjects: list[str] = []
    subject_colours: list[RGB | None] = []
    for i, word in enumerate(words):
        name = _SUBJECT_OF.get(word)
        if name is None or name in subjects or len(subjects) == MAX_SUBJECTS:
            continue
        subjects.append(name)
        near = [COLOURS[w] for w in words[max(0, i - 2) : i] if w in COLOURS]
        subject_colours.append(near[-1] if near else None)
    if colours and subjects and not any(subject_colours):  # "a lighthouse, red"
        subject_colours[0] = colours[0]
    tint: RGB | None = None
    if colours:
        tint = _rgb(sum(c[k] for c in colours) / len(colours) for k in range(3))
    alpha = min(TINT_ALPHA_MAX, TINT_ALPHA + TINT_ALPHA_STEP * (len(colours) - 1))
    return Scene(
        sky=skies[0] if skies else "day",
        lands=lands,
        subjects=tuple(subjects),
        tint=tint,
        tint_alpha=alpha if colours else 0.0,
        subject_colours=tuple(subject_colours),
    )


def canvas_size(aspect_ratio: str, scale: float = 1.0) -> tuple[int, int]:
    """The canvas for a ratio: `params.IMAGE_SIZES` times `scale`, at least 8 px a side."""
    width, height = IMAGE_SIZES[aspect_ratio]
    return max(MIN_SIDE_PX, round(width * scale)), max(MIN_SIDE_PX, round(height * scale))


def _rgb(values: object) -> RGB:
    r, g, b = (max(0, min(255, round(v))) for v in values)  # type: ignore[attr-defined]
    return (r, g, b)


def _mix(a: RGB, b: RGB, k: float) -> RGB:
    return _rgb(a[i] + (b[i] - a[i]) * k for i in range(3))


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big")


class _Dice:
    """The prompt's own choices (`base`) plus this call's jitter around them, scaled by temperature.

    Each element of the picture takes its own `sub` dice, so a star count that changes at
    a low temperature does not reshuffle the trees drawn after it.
    """

    def __init__(self, base_key: str, noise_key: str, spread: float) -> None:
        self._keys = (base_key, noise_key)
        self.base = random.Random(_seed(base_key))
        self.noise = random.Random(_seed(noise_key))
        self.spread = spread  # 0 at temperature 0, 1 at temperature 2

    def sub(self, name: str) -> _Dice:
        return _Dice(f"{self._keys[0]}/{name}", f"{self._keys[1]}/{name}", self.spread)

    def num(self, lo: float, hi: float, jitter: float = 0.5) -> float:
        base = self.base.uniform(lo, hi)
        return base + self.noise.uniform(-1.0, 1.0) * jitter * (hi - lo) * self.spread

    def count(self, lo: int, hi: int) -> int:
        return max(0, round(self.num(lo, hi, jitter=0.6)))

    def chance(self, p: float) -> bool:
        return self.base.random() + self.noise.uniform(-0.5, 0.5) * self.spread < p

    def colour(self, rgb: RGB, amount: float = 70.0) -> RGB:
        return _rgb(
            c + self.base.uniform(-10, 10) + self.noise.uniform(-1, 1) * amount * self.spread
            for c in rgb
        )


def _gradient(size: tuple[int, int], stops: Sequence[tuple[float, RGB]]) -> Image.Image:
    width, height = size
    column = Image.new("RGB", (1, height))
    rows: list[RGB] = []
    for y in range(height):
        f = y / max(1, height - 1)
        j = next((i for i in range(1, len(stops)) if stops[i][0] >= f), len(stops) - 1)
        (f0, c0), (f1, c1) = stops[j - 1], stops[j]
        rows.append(_mix(c0, c1, (f - f0) / (f1 - f0) if f1 > f0 else 0.0))
    column.putdata(rows)
    return column.resize((width, height), Image.Resampling.NEAREST)


@lru_cache(maxsize=4)
def _glow_mask(strength_pct: int) -> Image.Image:
    k = strength_pct / 100.0
    lut = [round(255 * k * max(0.0, 1 - v / 128) ** 2) for v in range(256)]
    return Image.radial_gradient("L").point(lut)


class _Painter:
    """One canvas being drawn, with the scene's lighting and the dice."""

    def __init__(self, size: tuple[int, int], scene: Scene, dice: _Dice) -> None:
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
        return _mix(rgb, colour, k)

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


def _paint_sky(p: _Painter) -> None:
    d, sky = p.dice.sub("sky"), p.scene.sky
    stops = [(f, d.colour(c, 60)) for f, c in _SKIES[sky]]
    p.img.paste(_gradient((p.w, max(1, round(p.horizon) + 1)), stops), (0, 0))
    if sky in ("night", "space"):
        for _ in range(d.count(90, 170) * p.w // p.s):
            r = p.s * d.base.uniform(0.001, 0.004)
            shade = round(d.base.uniform(150, 255))
            p.ellipse(d.num(0, p.w, 0.1), d.num(0, p.horizon * 0.95, 0.1), r, r, (shade,) * 3)
    if sky == "night":
        x, y, r = p.w * d.num(0.15, 0.85), p.h * d.num(0.1, 0.28, 0.6), p.s * d.num(0.045, 0.06)
        p.light_x = x
        p.glow(x, y, r * 6, (120, 140, 200), 0.5)
        p.ellipse(x, y, r, r, d.colour((240, 236, 210), 20))
        for dx, dy, k in ((-0.3, -0.2, 0.22), (0.25, 0.3, 0.15), (0.35, -0.35, 0.1)):
            p.ellipse(x + dx * r, y + dy * r, r * k, r * k, (215, 210, 190))
    elif sky in ("sunset", "dawn", "day"):
        high = sky == "day"
        x = p.w * d.num(0.6, 0.85) if high else p.w * d.num(0.25, 0.75)
        y = p.h * d.num(0.1, 0.2) if high else p.horizon - p.s * d.num(0.02, 0.08)
        r = p.s * (d.num(0.04, 0.055) if high else d.num(0.07, 0.1))
        sun = d.colour((255, 245, 200) if high else (255, 200, 90), 50)
        p.light_x = None if high else x
        p.glow(x, y, r * (5 if high else 9), (255, 250, 220) if high else (255, 170, 80), 0.7)
        p.ellipse(x, y, r, r, sun)
    elif sky == "space":
        x, y, r = p.w * d.num(0.2, 0.8), p.h * d.num(0.2, 0.4), p.s * d.num(0.08, 0.13)
        p.glow(x, y, r * 4, d.colour((160, 90, 200), 80), 0.5)
        p.ellipse(x, y, r, r, d.colour((200, 140, 90), 60))
        p.draw.ellipse((x - 2 * r, y - r * 0.35, x + 2 * r, y + r * 0.35),
                       outline=(230, 210, 170), width=max(1, round(r * 0.08)))  # fmt: skip
    storm = sky == "storm"
    cloud = (70, 72, 80) if storm else (255, 225, 215) if sky in ("sunset", "dawn") else (250,) * 3
    for _ in range(0 if sky in ("night", "space") else d.count(8, 12) if storm else d.count(2, 5)):
        cx, cy, size = p.w * d.num(0, 1), p.horizon * d.num(0.08, 0.6), p.s * d.num(0.05, 0.1)
        colour = d.colour(cloud, 30)
        for _ in range(5):
            dx, dy = d.base.uniform(-1.6, 1.6), d.base.uniform(-0.4, 0.3)
            rx, ry = d.base.uniform(0.7, 1.1), d.base.uniform(0.45, 0.7)
            p.ellipse(cx + dx * size, cy + dy * size, rx * size, ry * size, colour)


def _paint_land(p: _Painter) -> None:
    d, lands, top = p.dice.sub("land"), p.scene.lands, round(p.horizon)
    if "mountains" in lands:
        for depth, shade in ((0, (120, 130, 160)), (1, (80, 95, 120))):
            n = 2 * (d.count(4, 6) - depth)
            ridge = [(-1.0, top + 1.0)]
            for i in range(n + 1):
                rise = d.num(0.12, 0.26) if i % 2 == 0 else d.num(0.02, 0.08)
                ridge.append((p.w * (i + d.num(-0.3, 0.3)) / n, top - p.h * rise / (1 + depth)))
            ridge.append((p.w + 1.0, top + 1.0))
            p.poly(ridge, p.lit(d.colour(shade, 40)))
            for i in range(1, len(ridge) - 1, 2):
                (xa, ya), (x, y), (xb, yb) = ridge[i - 1], ridge[i], ridge[i + 1]
                cap = [(x, y), (x + (xa - x) * 0.3, y + (ya - y) * 0.3)]
                p.poly([*cap, (x + (xb - x) * 0.3, y + (yb - y) * 0.3)], p.lit((245, 248, 255)))
    if "city" in lands:
        x, lit_windows = -p.s * 0.02, p.scene.sky in ("night", "sunset", "storm")
        while x < p.w:
            bw, bh = p.s * d.num(0.05, 0.11), p.h * d.num(0.1, 0.34)
            wall = _mix(d.colour((105, 110, 130), 35), (20, 20, 30), d.num(0.0, 0.35))
            p.rect(x, top - bh, x + bw, top + 1, p.lit(wall))
            gap = max(2.0, p.s * 0.012)
            for wy in range(round(top - bh + gap), round(top - gap * 2), round(gap * 2)):
                for wx in range(round(x + gap), round(x + bw - gap * 1.5), round(gap * 1.8)):
                    if not lit_windows or d.base.random() < 0.45:
                        on = (255, 215, 120) if lit_windows else p.lit((175, 205, 230))
                        p.rect(wx, wy, wx + gap * 0.8, wy + gap, on)
            x += bw + p.s * d.num(0.0, 0.02)
    ground = next((g for g in _GROUNDS if g in lands), "lunar" if p.scene.sky == "space" else None)
    ground = ground or "meadow"
    g_top, g_bottom = (p.lit(d.colour(c, 40)) for c in _GROUNDS[ground])
    if "sea" in lands:
        water = [(0, p.lit(d.colour((90, 150, 200), 50))), (1, p.lit(d.colour((20, 60, 120), 40)))]
        p.img.paste(_gradient((p.w, max(1, p.h - top)), water), (0, top))
        p.img.paste(_gradient((p.w, max(1, p.h - round(p.shore))), [(0, g_top), (1, g_bottom)]),
                    (0, round(p.shore)))  # fmt: skip
        _paint_waves(p, d.sub("waves"))
    else:
        p.img.paste(_gradient((p.w, max(1, p.h - top)), [(0, g_top), (1, g_bottom)]), (0, top))
    if ground in ("meadow", "mountains", "desert", "lunar") and "sea" not in lands:
        for _ in range(d.count(2, 4)):  # hills, dunes or craters
            cx, r = p.w * d.num(-0.1, 1.1), p.s * d.num(0.25, 0.5)
            if ground == "lunar":
                p.ellipse(cx, top + p.h * d.num(0.04, 0.1), r * 0.4, r * 0.05, g_bottom)
            else:
                p.ellipse(cx, top + r * 0.85, r, r, _mix(g_top, g_bottom, d.num(0.2, 0.6)))
    if "forest" in lands:
        for row, (lo, hi) in enumerate(((0.07, 0.13), (0.14, 0.24))):
            trees = []
            for _ in range(d.count(22, 34) * p.w // p.s // (1 + 2 * row)):
                near = d.num(0.0, 0.05) if row == 0 else d.num(0.15, 0.55)
                size = p.h * d.num(lo, hi) * (1 + near)  # nearer trees look bigger
                trees.append((top + (p.h - top) * near, p.w * d.num(-0.05, 1.05, 0.2), size))
            for base, x, size in sorted(trees):  # far to near, so near trees hide far ones
                _pine(p, x, base, size, d, row)
    if ground == "city" and "sea" not in lands:  # a street in front of the buildings
        y0, y1 = top + (p.h - top) * 0.3, top + (p.h - top) * 0.7
        p.rect(0, y0, p.w, y1, p.lit((50, 50, 58)))
        dash, mid = p.s * 0.05, (y0 + y1) / 2
        for k in range(int(p.w / dash / 2) + 2):
            x0 = (k * 2 + d.num(0, 1, 0.2)) * dash
            p.rect(x0, mid - p.s * 0.004, x0 + dash, mid + p.s * 0.004, p.lit((235, 220, 140)))
    if "desert" in lands:
        for _ in range(d.count(1, 3)):
            x, y, size = p.w * d.num(0.05, 0.95), top + (p.h - top) * d.num(0.2, 0.6), p.h * 0.12
            green = p.lit(d.colour((60, 130, 70), 30))
            p.rect(x - size * 0.06, y - size, x + size * 0.06, y, green)
            p.rect(x - size * 0.3, y - size * 0.6, x + size * 0.3, y - size * 0.5, green)
            p.rect(x - size * 0.3, y - size * 0.85, x - size * 0.2, y - size * 0.5, green)
            p.rect(x + size * 0.2, y - size * 0.75, x + size * 0.3, y - size * 0.5, green)


def _paint_waves(p: _Painter, d: _Dice) -> None:
    top = p.horizon
    foam = p.lit((200, 225, 245))
    for _ in range(d.count(50, 90) * p.w // p.s):
        f = d.base.random() ** 1.6  # denser near the horizon, as in perspective
        y = top + (p.shore - top) * f
        length = p.s * (0.02 + 0.08 * f)
        x = p.w * d.num(0, 1, 0.1)
        p.draw.arc((x, y, x + length, y + length * 0.3), 200, 340, fill=foam,
                   width=max(1, round(p.s * 0.002 * (1 + 3 * f))))  # fmt: skip
    if p.light_x is not None:  # the low sun's or the moon's path on the water
        light = (255, 240, 200) if p.scene.sky == "night" else (255, 190, 100)
        for i in range(12):
            y = top + (p.shore - top) * (i + 1) / 14
            half = p.s * (0.02 + 0.05 * i / 12) * d.num(0.6, 1.2)
            p.line([(p.light_x - half, y), (p.light_x + half, y)], light, p.s * 0.004)


def _pine(p: _Painter, x: float, base: float, height: float, d: _Dice, row: int) -> None:
    green = p.lit(d.colour((30, 95, 50) if row else (45, 90, 60), 30))
    p.rect(x - height * 0.04, base - height * 0.15, x + height * 0.04, base, p.lit((90, 60, 35)))
    for k in range(3):
        y0, y1 = base - height * (1 - 0.25 * k), base - height * (0.45 - 0.15 * k)
        half = height * (0.18 + 0.08 * k)
        p.poly([(x, y0), (x - half, y1), (x + half, y1)], green)
        if "snow" in p.scene.lands:
            p.poly([(x, y0), (x - half * 0.4, y0 + (y1 - y0) * 0.4),
                    (x + half * 0.4, y0 + (y1 - y0) * 0.4)], p.lit((245, 248, 255)))  # fmt: skip


Subject = Callable[[_Painter, float, float, float, RGB, _Dice], None]


def _lighthouse(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    rock = p.lit((75, 70, 65))
    p.ellipse(x, y, h * 0.32, h * 0.06, rock)
    p.ellipse(x - h * 0.22, y - h * 0.01, h * 0.12, h * 0.06, _mix(rock, (0, 0, 0), 0.2))
    p.ellipse(x + h * 0.2, y + h * 0.01, h * 0.14, h * 0.05, _mix(rock, (0, 0, 0), 0.3))
    bw, tw, white = h * 0.11, h * 0.07, p.lit((245, 245, 240))
    for k in range(4):
        y0, y1 = y - h * 0.8 * k / 4, y - h * 0.8 * (k + 1) / 4
        w0, w1 = bw + (tw - bw) * k / 4, bw + (tw - bw) * (k + 1) / 4
        p.poly([(x - w0, y0), (x + w0, y0), (x + w1, y1), (x - w1, y1)], c if k % 2 else white)
    top = y - h * 0.8
    lamp = (255, 230, 120)
    if p.scene.sky in ("night", "sunset", "storm", "dawn"):
        p.glow(x, top - h * 0.06, h * 0.6, (255, 230, 150), 0.8)
        reach = p.w * d.num(0.3, 0.6) * (1 if d.chance(0.5) else -1)
        beam = [(x, top - h * 0.06), (x + reach, top - h * 0.16), (x + reach, top + h * 0.04)]
        p.veil(beam, lamp, 0.35)
    p.rect(x - tw * 1.3, top, x + tw * 1.3, top - h * 0.03, p.lit((40, 40, 45)))
    p.rect(x - tw * 0.8, top - h * 0.03, x + tw * 0.8, top - h * 0.1, lamp)
    p.poly([(x - tw, top - h * 0.1), (x + tw, top - h * 0.1), (x, top - h * 0.18)], c)


def _cat(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    p.line([(x + h * 0.25, y - h * 0.05), (x + h * 0.45, y - h * 0.3)], c, h * 0.06)
    p.ellipse(x, y - h * 0.3, h * 0.28, h * 0.3, c)
    p.ellipse(x, y - h * 0.72, h * 0.2, h * 0.18, c)
    for side in (-1, 1):
        p.poly([(x + side * h * 0.18, y - h * 0.78), (x + side * h * 0.05, y - h * 0.86),
                (x + side * h * 0.16, y - h * 0.98)], c)  # fmt: skip
        p.ellipse(x + side * h * 0.08, y - h * 0.74, h * 0.035, h * 0.045, (250, 220, 80))


def _tree(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    p.rect(x - h * 0.05, y, x + h * 0.05, y - h * 0.5, p.lit((100, 65, 40)))
    for dx, dy, r in ((0, -0.72, 0.26), (-0.2, -0.55, 0.2), (0.2, -0.55, 0.2), (0, -0.9, 0.14)):
        p.ellipse(x + dx * h, y + dy * h, r * h, r * h, _mix(c, (0, 0, 0), 0.1 * (dy + 1)))


def _house(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    w = h * 0.55
    p.rect(x + w * 0.4, y - h * 0.95, x + w * 0.6, y - h * 0.6, p.lit((110, 70, 60)))
    p.rect(x - w, y, x + w, y - h * 0.55, c)
    p.poly([(x - w * 1.15, y - h * 0.55), (x + w * 1.15, y - h * 0.55), (x, y - h)],
           p.lit((150, 60, 45)))  # fmt: skip
    window = (255, 210, 110) if p.scene.sky in ("night", "sunset") else p.lit((170, 210, 235))
    p.rect(x - w * 0.2, y, x + w * 0.2, y - h * 0.35, p.lit((90, 55, 35)))
    for side in (-1, 1):
        p.rect(x + side * w * 0.45, y - h * 0.22, x + side * w * 0.75, y - h * 0.42, window)


def _boat(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    w = h * 0.6
    p.poly([(x - w, y - h * 0.25), (x + w, y - h * 0.25), (x + w * 0.7, y), (x - w * 0.7, y)], c)
    p.line([(x, y - h * 0.25), (x, y - h)], p.lit((80, 60, 40)), h * 0.03)
    foot, mast = y - h * 0.32, h * 0.03
    p.poly(
        [(x + mast, y - h * 0.95), (x + mast, foot), (x + w * 0.8, foot)], p.lit((245, 245, 235))
    )
    p.poly(
        [(x - mast, y - h * 0.8), (x - mast, foot), (x - w * 0.55, foot)], p.lit((230, 225, 210))
    )


def _car(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    w = h * 1.1
    p.poly([(x - w * 0.5, y - h * 0.55), (x - w * 0.3, y - h * 0.95), (x + w * 0.3, y - h * 0.95),
            (x + w * 0.55, y - h * 0.55)], c)  # fmt: skip
    p.rect(x - w, y - h * 0.2, x + w, y - h * 0.6, c)
    p.rect(x - w * 0.25, y - h * 0.6, x + w * 0.25, y - h * 0.88, p.lit((170, 210, 235)))
    for side in (-1, 1):
        p.ellipse(x + side * w * 0.6, y - h * 0.18, h * 0.2, h * 0.2, (25, 25, 30))


def _person(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    skin, dark = p.lit((235, 190, 150)), p.lit((40, 40, 60))
    for side in (-1, 1):
        p.line([(x, y - h * 0.45), (x + side * h * 0.12, y)], dark, h * 0.06)
        p.line([(x, y - h * 0.75), (x + side * h * 0.2, y - h * 0.48)], c, h * 0.05)
    p.poly([(x - h * 0.12, y - h * 0.78), (x + h * 0.12, y - h * 0.78), (x + h * 0.14, y - h * 0.4),
            (x - h * 0.14, y - h * 0.4)], c)  # fmt: skip
    p.ellipse(x, y - h * 0.88, h * 0.1, h * 0.1, skin)


def _bird(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    for _ in range(d.count(3, 7)):
        bx, by, size = x + p.w * d.num(-0.25, 0.25), y - p.h * d.num(0.1, 0.45), h * d.num(0.1, 0.2)
        for side in (-1, 1):
            p.line([(bx, by), (bx + side * size, by - size * 0.4)], c, max(2, size * 0.12))


def _flower(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    for _ in range(d.count(3, 6)):
        fx, fy, size = x + p.w * d.num(-0.3, 0.3), y + h * d.num(-0.1, 0.3), h * d.num(0.5, 0.8)
        p.line([(fx, fy), (fx, fy - size)], p.lit((50, 130, 50)), size * 0.05)
        petal = size * 0.1
        for dx, dy in ((1, 0), (0.5, 0.87), (-0.5, 0.87), (-1, 0), (-0.5, -0.87), (0.5, -0.87)):
            p.ellipse(fx + dx * size * 0.13, fy - size + dy * size * 0.13, petal, petal, c)
        p.ellipse(fx, fy - size, size * 0.07, size * 0.07, (250, 210, 60))


def _balloon(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    by = y - p.h * d.num(0.3, 0.45)
    p.ellipse(x, by - h * 0.55, h * 0.32, h * 0.38, c)
    p.ellipse(x, by - h * 0.55, h * 0.12, h * 0.38, _mix(c, (255, 255, 255), 0.35))
    p.poly([(x - h * 0.3, by - h * 0.45), (x + h * 0.3, by - h * 0.45), (x, by - h * 0.1)], c)
    p.rect(x - h * 0.07, by, x + h * 0.07, by - h * 0.1, p.lit((120, 80, 40)))


def _rocket(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    by = y - p.h * d.num(0.15, 0.3)
    p.glow(x, by + h * 0.1, h * 0.5, (255, 160, 60), 0.9)
    p.poly([(x - h * 0.08, by), (x + h * 0.08, by), (x, by + h * 0.3)], (255, 190, 70))
    p.rect(x - h * 0.1, by, x + h * 0.1, by - h * 0.7, p.lit((235, 235, 240)))
    p.poly([(x - h * 0.1, by - h * 0.7), (x + h * 0.1, by - h * 0.7), (x, by - h)], c)
    for side in (-1, 1):
        p.poly([(x + side * h * 0.1, by - h * 0.25), (x + side * h * 0.22, by),
                (x + side * h * 0.1, by)], c)  # fmt: skip


def _castle(p: _Painter, x: float, y: float, h: float, c: RGB, d: _Dice) -> None:
    stone, w = p.lit((150, 145, 140)), h * 0.6
    p.rect(x - w, y, x + w, y - h * 0.55, stone)
    for side in (-1, 1):
        tx = x + side * w
        p.rect(tx - h * 0.14, y, tx + h * 0.14, y - h * 0.8, stone)
        p.poly([(tx - h * 0.18, y - h * 0.8), (tx + h * 0.18, y - h * 0.8), (tx, y - h)], c)
    for k in range(5):
        bx = x - w + (k + 0.5) * 2 * w / 5
        p.rect(bx - h * 0.04, y - h * 0.55, bx + h * 0.04, y - h * 0.62, stone)
    p.ellipse(x, y - h * 0.2, h * 0.12, h * 0.14, p.lit((60, 45, 35)))
    p.rect(x - h * 0.12, y, x + h * 0.12, y - h * 0.2, p.lit((60, 45, 35)))


_SUBJECTS: dict[str, tuple[Subject, float, RGB]] = {  # drawer, height (share of H), own colour
    "lighthouse": (_lighthouse, 0.5, (200, 40, 40)), "cat": (_cat, 0.2, (90, 80, 80)),
    "tree": (_tree, 0.45, (60, 140, 60)), "house": (_house, 0.28, (225, 205, 170)),
    "boat": (_boat, 0.25, (130, 80, 45)), "car": (_car, 0.12, (200, 40, 40)),
    "person": (_person, 0.25, (50, 90, 170)), "bird": (_bird, 0.1, (30, 30, 35)),
    "flower": (_flower, 0.15, (230, 80, 140)), "balloon": (_balloon, 0.3, (220, 60, 50)),
    "rocket": (_rocket, 0.3, (210, 50, 50)), "castle": (_castle, 0.35, (70, 60, 140)),
}  # fmt: skip


def _paint_subjects(p: _Painter) -> None:
    n = len(p.scene.subjects)
    for i, name in enumerate(p.scene.subjects):
        d = p.dice.sub("subject/" + name)
        drawer, height, own = _SUBJECTS[name]
        colour = p.lit(d.colour(p.scene.subject_colours[i] or own, 60))
        x = p.w * (d.num(0.4, 0.6, 1.5) if n == 1 else 0.3 + 0.4 * i + d.num(-0.05, 0.05, 2))
        ground = p.shore if "sea" in p.scene.lands else p.h
        y = p.horizon + (ground - p.horizon) * d.num(0.55, 0.8)
        if name == "boat" and "sea" in p.scene.lands:
            y = p.horizon + (p.shore - p.horizon) * d.num(0.35, 0.6)
        elif name == "lighthouse" and "sea" in p.scene.lands:
            x, y = (p.w * d.num(0.66, 0.8, 1.2) if n == 1 else x), p.horizon + p.h * 0.08
        drawer(p, x, y, p.h * height * d.num(0.85, 1.15), colour, d)


def _paint_weather(p: _Painter) -> None:
    d = p.dice.sub("weather")
    if "snow" in p.scene.lands:
        for _ in range(d.count(140, 240) * p.w // p.s):
            r = p.s * d.base.uniform(0.002, 0.006)
            p.ellipse(d.num(0, p.w, 0.1), d.num(0, p.h, 0.1), r, r, (250, 250, 255))
    if p.scene.sky == "storm":
        rain = (150, 160, 180)
        for _ in range(d.count(150, 250) * p.w // p.s):
            x, y, length = d.num(0, p.w, 0.1), d.num(0, p.h, 0.1), p.s * 0.04
            p.line([(x, y), (x - length * 0.3, y + length)], rain, p.s * 0.0015)


def _paint_caption(p: _Painter, prompt: str, note: str) -> None:
    if p.h < CAPTION_MIN_HEIGHT_PX:
        return
    strip = max(12, round(p.h * 0.032))
    box = (0, p.h - strip, p.w, p.h)
    p.img.paste(Image.blend(p.img.crop(box), Image.new("RGB", (p.w, strip)), 0.6), box[:2])
    font_px = max(8, round(strip * 0.62))
    font = ImageFont.load_default(size=font_px)
    pad = strip * 0.4
    room = p.w - 3 * pad - font.getlength(note)
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in prompt).split())
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = text[: max(0, round(room / (font_px * 0.2)))]  # longer never fits
    if font.getlength(text) > room:  # keep the longest start that fits with an ellipsis
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if font.getlength(text[:mid] + "…") <= room else (lo, mid - 1)
        text = text[:lo].rstrip() + "…" if lo else ""
    y = p.h - strip / 2
    p.draw.text((pad, y), text, fill=(235, 235, 235), font=font, anchor="lm")
    p.draw.text((p.w - pad, y), note, fill=(170, 170, 170), font=font, anchor="rm")


def render_image(
    prompt: str, aspect_ratio: str, temperature: float, *, variation: int, scale: float = 1.0
) -> Image.Image:
    """Draw the picture for one request (an RGB image of `canvas_size(aspect_ratio, scale)`).

    The prompt alone fixes the composition; `temperature` (0-2) sets how far this call's
    `variation` moves positions, colours and counts away from it. At temperature 0 the
    result depends on the prompt and the ratio only.
    """
    scene = read_prompt(prompt)
    spread = max(0.0, min(1.0, temperature / 2.0))
    noise_key = f"{prompt}\x00{aspect_ratio}\x00{temperature!r}\x00{variation}"
    p = _Painter(canvas_size(aspect_ratio, scale), scene, _Dice(prompt, noise_key, spread))
    _paint_sky(p)
    _paint_land(p)
    _paint_subjects(p)
    _paint_weather(p)
    if scene.tint is not None:
        p.img = Image.blend(p.img, Image.new("RGB", p.img.size, scene.tint), scene.tint_alpha)
        p.draw = ImageDraw.Draw(p.img)
    _paint_caption(p, prompt, f"{aspect_ratio} · T {temperature:g}")
    return p.img


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of `image`, fast compression, no text chunks."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()


def render_png(
    prompt: str, aspect_ratio: str, temperature: float, *, variation: int, scale: float = 1.0
) -> bytes:
    """`render_image` then `encode_png`."""
    image = render_image(prompt, aspect_ratio, temperature, variation=variation, scale=scale)
    return encode_png(image)
