"""The backdrop of a picture: sky (sun, moon, stars, clouds), land, water, trees, weather.

Draws on a `canvas.Painter`; knows nothing of subjects, captions or PNG.
"""

from __future__ import annotations

from .canvas import RGB, Dice, Painter, gradient, mix

__all__ = ["paint_land", "paint_sky", "paint_weather"]

# How far (share of the canvas, at temperature 2) a star, snowflake or raindrop strays. Small:
# a dot moved past its own size changes nothing more, so a larger jitter would stop the
# difference between calls from growing with temperature.
DOT_JITTER = 0.03

_SKIES: dict[str, list[tuple[float, RGB]]] = {
    "day": [(0, (60, 120, 205)), (1, (175, 215, 245))],
    "night": [(0, (6, 10, 30)), (0.7, (20, 30, 70)), (1, (45, 55, 100))],
    "sunset": [(0, (45, 40, 110)), (0.45, (200, 90, 110)), (0.8, (250, 150, 80)),
               (1, (255, 205, 120))],
    "dawn": [(0, (110, 150, 215)), (0.6, (235, 180, 190)), (1, (255, 215, 170))],
    "storm": [(0, (40, 44, 52)), (1, (105, 110, 120))],
    "space": [(0, (2, 2, 10)), (0.6, (20, 10, 45)), (1, (45, 15, 70))],
}  # fmt: skip
_GROUNDS: dict[str, tuple[RGB, RGB]] = {  # in order of precedence when several are named
    "snow": ((235, 240, 250), (195, 210, 235)), "desert": ((235, 200, 130), (200, 150, 80)),
    "beach": ((240, 220, 170), (215, 190, 130)), "forest": ((60, 110, 55), (25, 70, 30)),
    "city": ((90, 90, 100), (55, 55, 65)), "mountains": ((100, 140, 80), (60, 100, 50)),
    "meadow": ((110, 170, 80), (45, 110, 40)), "lunar": ((120, 120, 130), (70, 70, 80)),
}  # fmt: skip


def paint_sky(p: Painter) -> None:
    """Sky gradient down to the horizon, then stars, moon or sun, planet, and clouds."""
    d, sky = p.dice.sub("sky"), p.scene.sky
    stops = [(f, d.colour(c, 60)) for f, c in _SKIES[sky]]
    p.img.paste(gradient((p.w, max(1, round(p.horizon) + 1)), stops), (0, 0))
    if sky in ("night", "space"):
        stars = d.sub("stars")  # its own dice: a star more or less moves nothing after it
        for _ in range(stars.count(90, 170) * p.w // p.s):
            r = p.s * stars.base.uniform(0.001, 0.004)
            shade = round(stars.base.uniform(150, 255))
            x, y = stars.num(0, p.w, DOT_JITTER), stars.num(0, p.horizon * 0.95, DOT_JITTER)
            p.ellipse(x, y, r, r, (shade,) * 3)
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
    d = d.sub("clouds")
    for _ in range(0 if sky in ("night", "space") else d.count(8, 12) if storm else d.count(2, 5)):
        cx, cy, size = p.w * d.num(0, 1), p.horizon * d.num(0.08, 0.6), p.s * d.num(0.05, 0.1)
        colour = d.colour(cloud, 30)
        for _ in range(5):
            dx, dy = d.base.uniform(-1.6, 1.6), d.base.uniform(-0.4, 0.3)
            rx, ry = d.base.uniform(0.7, 1.1), d.base.uniform(0.45, 0.7)
            p.ellipse(cx + dx * size, cy + dy * size, rx * size, ry * size, colour)


def paint_land(p: Painter) -> None:
    """Below (and on) the horizon: mountains, skyline, ground or sea, hills, forest, street."""
    d, lands, top = p.dice.sub("land"), p.scene.lands, round(p.horizon)
    if "mountains" in lands:
        m = d.sub("mountains")
        for depth, shade in ((0, (120, 130, 160)), (1, (80, 95, 120))):
            n = 2 * (
                m.base.randint(4, 6) - depth
            )  # the peaks move with temperature; never renumbered
            ridge = [(-1.0, top + 1.0)]
            for i in range(n + 1):
                rise = m.num(0.12, 0.26) if i % 2 == 0 else m.num(0.02, 0.08)
                ridge.append((p.w * (i + m.num(-0.3, 0.3)) / n, top - p.h * rise / (1 + depth)))
            ridge.append((p.w + 1.0, top + 1.0))
            p.poly(ridge, p.lit(m.colour(shade, 40)))
            for i in range(1, len(ridge) - 1, 2):
                (xa, ya), (x, y), (xb, yb) = ridge[i - 1], ridge[i], ridge[i + 1]
                cap = [(x, y), (x + (xa - x) * 0.3, y + (ya - y) * 0.3)]
                p.poly([*cap, (x + (xb - x) * 0.3, y + (yb - y) * 0.3)], p.lit((245, 248, 255)))
    if "city" in lands:
        x, lit_windows = -p.s * 0.02, p.scene.sky in ("night", "sunset", "storm")
        for k in range(200):  # each building its own dice: one wider moves only those after
            if x >= p.w:
                break
            b = d.sub(f"building{k}")
            bw, bh = p.s * b.num(0.05, 0.11), p.h * b.num(0.1, 0.34)
            wall = mix(b.colour((105, 110, 130), 35), (20, 20, 30), b.num(0.0, 0.35))
            p.rect(x, top - bh, x + bw, top + 1, p.lit(wall))
            gap, step = max(2.0, p.s * 0.012), p.s * b.num(0.0, 0.02)
            lit_seed = b.base.getrandbits(32)  # which windows are lit: fixed by the prompt
            for i, wy in enumerate(
                range(round(top - bh + gap), round(top - gap * 2), round(gap * 2))
            ):
                for j, wx in enumerate(
                    range(round(x + gap), round(x + bw - gap * 1.5), round(gap * 1.8))
                ):
                    if not lit_windows or _hashed(lit_seed, i, j) < 0.45:
                        on = (255, 215, 120) if lit_windows else p.lit((175, 205, 230))
                        p.rect(wx, wy, wx + gap * 0.8, wy + gap, on)
            x += bw + step
    ground = next((g for g in _GROUNDS if g in lands), "lunar" if p.scene.sky == "space" else None)
    ground = ground or "meadow"
    g_top, g_bottom = (p.lit(d.colour(c, 40)) for c in _GROUNDS[ground])
    if "sea" in lands:
        water = [(0, p.lit(d.colour((90, 150, 200), 50))), (1, p.lit(d.colour((20, 60, 120), 40)))]
        p.img.paste(gradient((p.w, max(1, p.h - top)), water), (0, top))
        p.img.paste(gradient((p.w, max(1, p.h - round(p.shore))), [(0, g_top), (1, g_bottom)]),
                    (0, round(p.shore)))  # fmt: skip
        _paint_waves(p, d.sub("waves"))
    else:
        p.img.paste(gradient((p.w, max(1, p.h - top)), [(0, g_top), (1, g_bottom)]), (0, top))
    if ground in ("meadow", "mountains", "desert", "lunar") and "sea" not in lands:
        hills = d.sub("hills")
        for _ in range(hills.count(2, 4)):  # hills, dunes or craters
            cx, r = p.w * hills.num(-0.1, 1.1), p.s * hills.num(0.25, 0.5)
            y, fade = top + p.h * hills.num(0.04, 0.1), hills.num(0.2, 0.6)
            if ground == "lunar":
                p.ellipse(cx, y, r * 0.4, r * 0.05, g_bottom)
            else:
                p.ellipse(cx, top + r * 0.85, r, r, mix(g_top, g_bottom, fade))
    if "forest" in lands:
        for row, (lo, hi) in enumerate(((0.07, 0.13), (0.14, 0.24))):
            d = p.dice.sub(f"land/forest{row}")
            trees = []
            for _ in range(d.count(22, 34) * p.w // p.s // (1 + 2 * row)):
                near = d.num(0.0, 0.05) if row == 0 else d.num(0.15, 0.55)
                size = p.h * d.num(lo, hi) * (1 + near)  # nearer trees look bigger
                trees.append((top + (p.h - top) * near, p.w * d.num(-0.05, 1.05, 0.2), size))
            for base, x, size in sorted(trees):  # far to near, so near trees hide far ones
                _pine(p, x, base, size, d, row)
    d = p.dice.sub("land/street")
    if ground == "city" and "sea" not in lands:  # a street in front of the buildings
        y0, y1 = top + (p.h - top) * 0.3, top + (p.h - top) * 0.7
        p.rect(0, y0, p.w, y1, p.lit((50, 50, 58)))
        dash, mid = p.s * 0.05, (y0 + y1) / 2
        for k in range(int(p.w / dash / 2) + 2):
            x0 = (k * 2 + d.num(0, 1, 0.2)) * dash
            p.rect(x0, mid - p.s * 0.004, x0 + dash, mid + p.s * 0.004, p.lit((235, 220, 140)))
    if "desert" in lands:
        d = p.dice.sub("land/cactus")
        for _ in range(d.count(1, 3)):
            x, y, size = p.w * d.num(0.05, 0.95), top + (p.h - top) * d.num(0.2, 0.6), p.h * 0.12
            green = p.lit(d.colour((60, 130, 70), 30))
            p.rect(x - size * 0.06, y - size, x + size * 0.06, y, green)
            p.rect(x - size * 0.3, y - size * 0.6, x + size * 0.3, y - size * 0.5, green)
            p.rect(x - size * 0.3, y - size * 0.85, x - size * 0.2, y - size * 0.5, green)
            p.rect(x + size * 0.2, y - size * 0.75, x + size * 0.3, y - size * 0.5, green)


def _hashed(seed: int, i: int, j: int) -> float:
    """A fixed pseudo-random number in [0, 1) for cell (i, j): no draw, so nothing shifts."""
    h = (seed ^ (i * 0x9E3779B1) ^ (j * 0x85EBCA77)) & 0xFFFFFFFF
    h = ((h ^ (h >> 15)) * 0x2C1B3C6D) & 0xFFFFFFFF
    h = ((h ^ (h >> 12)) * 0x297A2D39) & 0xFFFFFFFF
    return ((h ^ (h >> 15)) & 0xFFFFFF) / float(1 << 24)


def _paint_waves(p: Painter, d: Dice) -> None:
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
        d = d.sub("path")
        for i in range(12):
            y = top + (p.shore - top) * (i + 1) / 14
            half = p.s * (0.02 + 0.05 * i / 12) * d.num(0.6, 1.2)
            p.line([(p.light_x - half, y), (p.light_x + half, y)], light, p.s * 0.004)


def _pine(p: Painter, x: float, base: float, height: float, d: Dice, row: int) -> None:
    green = p.lit(d.colour((30, 95, 50) if row else (45, 90, 60), 30))
    p.rect(x - height * 0.04, base - height * 0.15, x + height * 0.04, base, p.lit((90, 60, 35)))
    for k in range(3):
        y0, y1 = base - height * (1 - 0.25 * k), base - height * (0.45 - 0.15 * k)
        half = height * (0.18 + 0.08 * k)
        p.poly([(x, y0), (x - half, y1), (x + half, y1)], green)
        if "snow" in p.scene.lands:
            p.poly([(x, y0), (x - half * 0.4, y0 + (y1 - y0) * 0.4),
                    (x + half * 0.4, y0 + (y1 - y0) * 0.4)], p.lit((245, 248, 255)))  # fmt: skip


def paint_weather(p: Painter) -> None:
    """Snowflakes and rain over everything drawn so far."""
    d = p.dice.sub("weather")
    if "snow" in p.scene.lands:
        d = p.dice.sub("weather/snow")
        for _ in range(d.count(140, 240) * p.w // p.s):
            r = p.s * d.base.uniform(0.002, 0.006)
            p.ellipse(d.num(0, p.w, DOT_JITTER), d.num(0, p.h, DOT_JITTER), r, r, (250, 250, 255))
    if p.scene.sky == "storm":
        rain, d = (150, 160, 180), p.dice.sub("weather/rain")
        for _ in range(d.count(150, 250) * p.w // p.s):
            x, y, length = d.num(0, p.w, DOT_JITTER), d.num(0, p.h, DOT_JITTER), p.s * 0.04
            p.line([(x, y), (x - length * 0.3, y + length)], rain, p.s * 0.0015)
