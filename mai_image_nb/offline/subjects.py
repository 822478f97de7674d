"""The subjects a prompt can name (lighthouse, cat, boat...): one drawer each, and placement.

Draws on a `canvas.Painter`, in front of the backdrop `scenes.py` painted.
"""

from __future__ import annotations

from collections.abc import Callable

from .canvas import RGB, Dice, Painter, mix

__all__ = ["paint_subjects"]

Subject = Callable[[Painter, float, float, float, RGB, Dice], None]


def _lighthouse(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    rock = p.lit((75, 70, 65))
    p.ellipse(x, y, h * 0.32, h * 0.06, rock)
    p.ellipse(x - h * 0.22, y - h * 0.01, h * 0.12, h * 0.06, mix(rock, (0, 0, 0), 0.2))
    p.ellipse(x + h * 0.2, y + h * 0.01, h * 0.14, h * 0.05, mix(rock, (0, 0, 0), 0.3))
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


def _cat(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    p.line([(x + h * 0.25, y - h * 0.05), (x + h * 0.45, y - h * 0.3)], c, h * 0.06)
    p.ellipse(x, y - h * 0.3, h * 0.28, h * 0.3, c)
    p.ellipse(x, y - h * 0.72, h * 0.2, h * 0.18, c)
    for side in (-1, 1):
        p.poly([(x + side * h * 0.18, y - h * 0.78), (x + side * h * 0.05, y - h * 0.86),
                (x + side * h * 0.16, y - h * 0.98)], c)  # fmt: skip
        p.ellipse(x + side * h * 0.08, y - h * 0.74, h * 0.035, h * 0.045, (250, 220, 80))


def _tree(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    p.rect(x - h * 0.05, y, x + h * 0.05, y - h * 0.5, p.lit((100, 65, 40)))
    for dx, dy, r in ((0, -0.72, 0.26), (-0.2, -0.55, 0.2), (0.2, -0.55, 0.2), (0, -0.9, 0.14)):
        p.ellipse(x + dx * h, y + dy * h, r * h, r * h, mix(c, (0, 0, 0), 0.1 * (dy + 1)))


def _house(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    w = h * 0.55
    p.rect(x + w * 0.4, y - h * 0.95, x + w * 0.6, y - h * 0.6, p.lit((110, 70, 60)))
    p.rect(x - w, y, x + w, y - h * 0.55, c)
    p.poly([(x - w * 1.15, y - h * 0.55), (x + w * 1.15, y - h * 0.55), (x, y - h)],
           p.lit((150, 60, 45)))  # fmt: skip
    window = (255, 210, 110) if p.scene.sky in ("night", "sunset") else p.lit((170, 210, 235))
    p.rect(x - w * 0.2, y, x + w * 0.2, y - h * 0.35, p.lit((90, 55, 35)))
    for side in (-1, 1):
        p.rect(x + side * w * 0.45, y - h * 0.22, x + side * w * 0.75, y - h * 0.42, window)


def _boat(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
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


def _car(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    w = h * 1.1
    p.poly([(x - w * 0.5, y - h * 0.55), (x - w * 0.3, y - h * 0.95), (x + w * 0.3, y - h * 0.95),
            (x + w * 0.55, y - h * 0.55)], c)  # fmt: skip
    p.rect(x - w, y - h * 0.2, x + w, y - h * 0.6, c)
    p.rect(x - w * 0.25, y - h * 0.6, x + w * 0.25, y - h * 0.88, p.lit((170, 210, 235)))
    for side in (-1, 1):
        p.ellipse(x + side * w * 0.6, y - h * 0.18, h * 0.2, h * 0.2, (25, 25, 30))


def _person(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    skin, dark = p.lit((235, 190, 150)), p.lit((40, 40, 60))
    for side in (-1, 1):
        p.line([(x, y - h * 0.45), (x + side * h * 0.12, y)], dark, h * 0.06)
        p.line([(x, y - h * 0.75), (x + side * h * 0.2, y - h * 0.48)], c, h * 0.05)
    p.poly([(x - h * 0.12, y - h * 0.78), (x + h * 0.12, y - h * 0.78), (x + h * 0.14, y - h * 0.4),
            (x - h * 0.14, y - h * 0.4)], c)  # fmt: skip
    p.ellipse(x, y - h * 0.88, h * 0.1, h * 0.1, skin)


def _bird(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    for _ in range(d.count(3, 7)):
        bx, by = x + p.w * d.num(-0.25, 0.25), y - p.h * d.num(0.2, 0.5)
        size = h * d.num(0.35, 0.6)
        for side in (-1, 1):  # a gull's two bent wings
            wing = [
                (bx, by),
                (bx + side * size * 0.5, by - size * 0.35),
                (bx + side * size, by - size * 0.1),
            ]
            p.line(wing, c, max(2, size * 0.1))


def _flower(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    for _ in range(d.count(3, 6)):
        fx, fy, size = x + p.w * d.num(-0.3, 0.3), y + h * d.num(-0.1, 0.3), h * d.num(0.5, 0.8)
        p.line([(fx, fy), (fx, fy - size)], p.lit((50, 130, 50)), size * 0.05)
        petal = size * 0.1
        for dx, dy in ((1, 0), (0.5, 0.87), (-0.5, 0.87), (-1, 0), (-0.5, -0.87), (0.5, -0.87)):
            p.ellipse(fx + dx * size * 0.13, fy - size + dy * size * 0.13, petal, petal, c)
        p.ellipse(fx, fy - size, size * 0.07, size * 0.07, (250, 210, 60))


def _balloon(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    by = y - p.h * d.num(0.3, 0.45)
    p.ellipse(x, by - h * 0.55, h * 0.32, h * 0.38, c)
    p.ellipse(x, by - h * 0.55, h * 0.12, h * 0.38, mix(c, (255, 255, 255), 0.35))
    p.poly([(x - h * 0.3, by - h * 0.45), (x + h * 0.3, by - h * 0.45), (x, by - h * 0.1)], c)
    p.rect(x - h * 0.07, by, x + h * 0.07, by - h * 0.1, p.lit((120, 80, 40)))


def _rocket(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    by = y - p.h * d.num(0.15, 0.3)
    p.glow(x, by + h * 0.1, h * 0.5, (255, 160, 60), 0.9)
    p.poly([(x - h * 0.08, by), (x + h * 0.08, by), (x, by + h * 0.3)], (255, 190, 70))
    p.rect(x - h * 0.1, by, x + h * 0.1, by - h * 0.7, p.lit((235, 235, 240)))
    p.poly([(x - h * 0.1, by - h * 0.7), (x + h * 0.1, by - h * 0.7), (x, by - h)], c)
    for side in (-1, 1):
        p.poly([(x + side * h * 0.1, by - h * 0.25), (x + side * h * 0.22, by),
                (x + side * h * 0.1, by)], c)  # fmt: skip


def _castle(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
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


def _fox(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    """Side view, facing left: bushy white-tipped tail, dark socks, pointed ears and snout."""
    white, dark = p.lit((245, 240, 230)), p.lit((45, 30, 25))
    shade = mix(c, (0, 0, 0), 0.18)
    # the tail: a long plume rising behind, its tip white
    tail = [
        (x + h * 0.38, y - h * 0.5),
        (x + h * 0.95, y - h * 0.62),
        (x + h * 1.18, y - h * 0.42),
        (x + h * 1.05, y - h * 0.3),
        (x + h * 0.7, y - h * 0.32),
        (x + h * 0.4, y - h * 0.38),
    ]
    p.poly(tail, shade)
    p.ellipse(x + h * 1.1, y - h * 0.44, h * 0.12, h * 0.1, white)
    for lx in (-0.28, -0.12, 0.2, 0.34):  # legs with dark socks
        p.rect(x + h * (lx - 0.035), y - h * 0.32, x + h * (lx + 0.035), y - h * 0.1, c)
        p.rect(x + h * (lx - 0.035), y - h * 0.12, x + h * (lx + 0.035), y, dark)
    p.ellipse(x + h * 0.03, y - h * 0.45, h * 0.42, h * 0.19, c)  # body
    p.ellipse(x - h * 0.22, y - h * 0.4, h * 0.14, h * 0.11, white)  # chest
    hx, hy = x - h * 0.42, y - h * 0.68
    p.poly(
        [
            (hx + h * 0.1, hy - h * 0.1),
            (hx + h * 0.22, hy + h * 0.12),
            (hx - h * 0.02, hy + h * 0.2),
            (hx - h * 0.12, hy + h * 0.02),
        ],
        c,
    )  # the neck
    for ex in (-0.02, 0.1):  # ears, dark-tipped
        tip = (hx + h * (ex + 0.02), hy - h * 0.33)
        p.poly(
            [(hx + h * (ex - 0.07), hy - h * 0.08), tip, (hx + h * (ex + 0.09), hy - h * 0.06)], c
        )
        p.poly(
            [(tip[0] - h * 0.025, tip[1] + h * 0.08), tip, (tip[0] + h * 0.03, tip[1] + h * 0.08)],
            dark,
        )
    p.ellipse(hx, hy, h * 0.15, h * 0.13, c)  # head
    p.poly(
        [
            (hx - h * 0.1, hy - h * 0.05),
            (hx - h * 0.36, hy + h * 0.06),
            (hx - h * 0.08, hy + h * 0.12),
        ],
        c,
    )  # snout
    p.poly(
        [
            (hx - h * 0.05, hy + h * 0.04),
            (hx - h * 0.34, hy + h * 0.075),
            (hx - h * 0.02, hy + h * 0.13),
        ],
        white,
    )  # white muzzle
    p.ellipse(hx - h * 0.35, hy + h * 0.06, h * 0.03, h * 0.025, dark)  # nose
    p.ellipse(hx - h * 0.04, hy - h * 0.03, h * 0.025, h * 0.02, dark)  # eye


def _dog(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    """Side view, facing left: a raised tail, floppy ear, square muzzle and a collar."""
    dark = mix(c, (0, 0, 0), 0.45)
    p.line([(x + h * 0.38, y - h * 0.5), (x + h * 0.6, y - h * 0.8)], c, h * 0.07)  # tail
    for lx in (-0.3, -0.14, 0.18, 0.32):
        p.rect(x + h * (lx - 0.04), y - h * 0.35, x + h * (lx + 0.04), y, c)
    p.ellipse(x, y - h * 0.45, h * 0.42, h * 0.17, c)  # body
    hx, hy = x - h * 0.42, y - h * 0.7
    p.poly(
        [
            (hx + h * 0.05, hy - h * 0.05),
            (hx + h * 0.2, hy + h * 0.12),
            (hx + h * 0.02, hy + h * 0.3),
            (hx - h * 0.1, hy + h * 0.05),
        ],
        c,
    )  # neck
    p.ellipse(hx, hy, h * 0.15, h * 0.14, c)  # head
    p.rect(hx - h * 0.3, hy - h * 0.02, hx - h * 0.05, hy + h * 0.12, c)  # muzzle
    p.ellipse(hx - h * 0.3, hy + h * 0.01, h * 0.035, h * 0.03, (25, 20, 20))  # nose
    p.ellipse(hx + h * 0.07, hy + h * 0.05, h * 0.06, h * 0.15, dark)  # floppy ear
    p.ellipse(hx - h * 0.06, hy - h * 0.04, h * 0.025, h * 0.025, (25, 20, 20))  # eye
    p.line([(hx + h * 0.12, hy + h * 0.1), (hx + h * 0.02, hy + h * 0.22)], (200, 40, 40), h * 0.04)


def _whale(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    """Side view, facing left, at the water line: spout, long body, raised tail flukes."""
    belly, dark = mix(c, (255, 255, 255), 0.45), mix(c, (0, 0, 0), 0.35)
    by = y - h * 0.3
    for k in range(3):  # the spout
        sx = x - h * 0.45 + (k - 1) * h * 0.07
        p.line(
            [(x - h * 0.45, by - h * 0.3), (sx, by - h * 0.65)], p.lit((200, 225, 250)), h * 0.03
        )
    p.poly(
        [
            (x + h * 0.7, by - h * 0.05),
            (x + h * 1.15, by - h * 0.3),
            (x + h * 1.2, by - h * 0.22),
            (x + h * 0.95, by + h * 0.1),
        ],
        c,
    )  # tail stock
    for side in (-1, 1):  # the flukes
        p.poly(
            [
                (x + h * 1.15, by - h * 0.28),
                (x + h * (1.2 + 0.25 * side), by - h * (0.55 - 0.1 * side)),
                (x + h * 1.22, by - h * 0.18),
            ],
            c,
        )
    p.ellipse(x, by, h * 0.85, h * 0.32, c)  # body
    p.ellipse(x - h * 0.1, by + h * 0.16, h * 0.65, h * 0.13, belly)
    p.line([(x - h * 0.8, by + h * 0.05), (x - h * 0.45, by + h * 0.1)], dark, h * 0.025)  # mouth
    p.ellipse(x - h * 0.5, by - h * 0.04, h * 0.035, h * 0.035, (20, 20, 25))  # eye
    p.poly(
        [
            (x + h * 0.05, by + h * 0.18),
            (x + h * 0.3, by + h * 0.42),
            (x + h * 0.25, by + h * 0.18),
        ],
        dark,
    )  # flipper
    if "sea" in p.scene.lands:  # the water line hides the lowest part
        foam = p.lit((215, 235, 250))
        for k in range(5):
            p.ellipse(x - h * 0.8 + k * h * 0.4, by + h * 0.3, h * 0.2, h * 0.05, foam)


def _fish(p: Painter, x: float, y: float, h: float, c: RGB, d: Dice) -> None:
    """One to three fish leaping from the water: body, tail fin, top fin, an eye."""
    for k in range(d.count(1, 3)):
        fx, fy = x + (k - 1) * h * 1.6 + h * d.num(-0.2, 0.2), y - h * (0.5 + 0.25 * (k % 2))
        size = h * d.num(0.8, 1.1)
        fin = mix(c, (0, 0, 0), 0.25)
        p.poly(
            [
                (fx + size * 0.4, fy),
                (fx + size * 0.8, fy - size * 0.25),
                (fx + size * 0.8, fy + size * 0.25),
            ],
            fin,
        )  # tail
        p.poly(
            [
                (fx - size * 0.1, fy - size * 0.2),
                (fx + size * 0.15, fy - size * 0.38),
                (fx + size * 0.25, fy - size * 0.15),
            ],
            fin,
        )  # top fin
        p.ellipse(fx, fy, size * 0.48, size * 0.24, c)
        p.ellipse(
            fx - size * 0.05,
            fy + size * 0.08,
            size * 0.3,
            size * 0.08,
            mix(c, (255, 255, 255), 0.4),
        )
        p.ellipse(fx - size * 0.3, fy - size * 0.05, size * 0.06, size * 0.06, (250, 250, 250))
        p.ellipse(fx - size * 0.31, fy - size * 0.05, size * 0.03, size * 0.03, (15, 15, 20))


_SUBJECTS: dict[str, tuple[Subject, float, RGB]] = {  # drawer, height (share of H), own colour
    "lighthouse": (_lighthouse, 0.5, (200, 40, 40)), "cat": (_cat, 0.28, (90, 80, 80)),
    "tree": (_tree, 0.45, (60, 140, 60)), "house": (_house, 0.28, (225, 205, 170)),
    "boat": (_boat, 0.25, (130, 80, 45)), "car": (_car, 0.12, (200, 40, 40)),
    "person": (_person, 0.25, (50, 90, 170)), "bird": (_bird, 0.1, (30, 30, 35)),
    "flower": (_flower, 0.15, (230, 80, 140)), "balloon": (_balloon, 0.3, (220, 60, 50)),
    "rocket": (_rocket, 0.3, (210, 50, 50)), "castle": (_castle, 0.35, (70, 60, 140)),
    "fox": (_fox, 0.3, (215, 105, 35)), "whale": (_whale, 0.22, (70, 95, 130)),
    "fish": (_fish, 0.16, (240, 140, 40)), "dog": (_dog, 0.3, (165, 110, 60)),
}  # fmt: skip


def paint_subjects(p: Painter) -> None:
    """The prompt's subjects (at most two), each in its colour, placed on land or sea."""
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
