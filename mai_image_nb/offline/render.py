"""Draw the simulator's pictures: prompt words pick sky, land, subjects and tint.

Temperature jitters what the words chose; `scenes.py` and `subjects.py` do the drawing.
Pillow shapes only, no per-pixel loops (tens of ms).
"""

from __future__ import annotations

import io
import re

from PIL import Image, ImageDraw, ImageFont

from mai_image_nb.params import IMAGE_SIZES

from .canvas import RGB, Dice, Painter, Scene, to_rgb
from .scenes import paint_land, paint_sky, paint_weather
from .subjects import paint_subjects

__all__ = [
    "Scene",
    "canvas_size",
    "composition_key",
    "encode_png",
    "read_prompt",
    "render_image",
    "render_png",
]

MIN_SIDE_PX = 8
PNG_COMPRESS_LEVEL = 1  # flat shapes compress well even at level 1; higher levels cost 3-5x time
CAPTION_MIN_HEIGHT_PX = 64  # smaller canvases get no caption: it could not be read
TINT_ALPHA = 0.3  # one colour word; each further one adds TINT_ALPHA_STEP, up to TINT_ALPHA_MAX
TINT_ALPHA_STEP = 0.06
TINT_ALPHA_MAX = 0.45
MAX_SUBJECTS = 2
SPREAD_POWER = 2.25  # jitter grows as (temperature / 2) ** 2.25: little at 0.5, full at 2
MOOD_ALPHA_MAX = 0.35  # the strongest colour blotches of one call, at temperature 2
MOOD_CELLS = 10  # blotches across the picture
MOOD_HUE = 40.0  # how far a blotch's channels stray from its grey

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
    "fox": "fox foxes vixen", "whale": "whale whales orca", "dog": "dog dogs puppy",
    "fish": "fish fishes goldfish salmon trout",
}  # fmt: skip
_WATER_SUBJECTS = frozenset({"whale", "fish", "boat"})
_WORD_RE = re.compile(r"[a-z]+")
_SPACES_RE = re.compile(r" {2,}")
_COLOUR_RE = re.compile(r"\b(?:" + "|".join(COLOURS) + r")\b", re.IGNORECASE)


def _table(words: dict[str, str]) -> dict[str, str]:
    return {word: key for key, text in words.items() for word in text.split()}


_SKY_OF, _LAND_OF, _SUBJECT_OF = _table(_SKY_WORDS), _table(_LAND_WORDS), _table(_SUBJECT_WORDS)


def read_prompt(prompt: str) -> Scene:
    """Pick the sky, lands, subjects and colours named in `prompt` (first mention wins).

    A colour word just before a subject ("a red fox") colours that subject only; colour
    words that belong to no subject ("a red sky", "in blue tones") tint the whole picture.
    """
    words = _WORD_RE.findall(prompt.lower())
    skies = [_SKY_OF[w] for w in words if w in _SKY_OF]
    lands = frozenset(_LAND_OF[w] for w in words if w in _LAND_OF)
    subjects: list[str] = []
    subject_colours: list[RGB | None] = []
    used: set[int] = set()  # positions of colour words that went to a subject
    for i, word in enumerate(words):
        name = _SUBJECT_OF.get(word)
        if name is None or name in subjects or len(subjects) == MAX_SUBJECTS:
            continue
        subjects.append(name)
        near = [j for j in range(max(0, i - 2), i) if words[j] in COLOURS and j not in used]
        subject_colours.append(COLOURS[words[near[-1]]] if near else None)
        used.update(near[-1:])
    free = [i for i, w in enumerate(words) if w in COLOURS and i not in used]
    if free and subjects and not any(subject_colours):  # "a lighthouse, red"
        subject_colours[0] = COLOURS[words[free[0]]]
        free = free[1:]
    colours = [COLOURS[words[i]] for i in free]
    tint: RGB | None = None
    if colours:
        tint = to_rgb(sum(c[k] for c in colours) / len(colours) for k in range(3))
    alpha = min(TINT_ALPHA_MAX, TINT_ALPHA + TINT_ALPHA_STEP * (len(colours) - 1))
    if not lands and _WATER_SUBJECTS.intersection(subjects):  # "a whale": in the sea
        lands = frozenset({"sea"})
    return Scene(
        sky=skies[0] if skies else "day",
        lands=lands,
        subjects=tuple(subjects),
        tint=tint,
        tint_alpha=alpha if colours else 0.0,
        subject_colours=tuple(subject_colours),
    )


def composition_key(prompt: str) -> str:
    """The prompt without its colour words: "a red fox" and "a fox" share one layout."""
    return _SPACES_RE.sub(" ", _COLOUR_RE.sub("", prompt)).strip(" ")


def canvas_size(aspect_ratio: str, scale: float = 1.0) -> tuple[int, int]:
    """The canvas for a ratio: `params.IMAGE_SIZES` times `scale`, at least 8 px a side."""
    width, height = IMAGE_SIZES[aspect_ratio]
    return max(MIN_SIDE_PX, round(width * scale)), max(MIN_SIDE_PX, round(height * scale))


def _paint_caption(p: Painter, prompt: str, note: str) -> None:
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


def _paint_mood(p: Painter) -> None:
    """This call's light: soft blotches of random colour, stronger the higher the temperature.

    Moved shapes stop adding difference once they have moved their own size, and a few
    big moves make the measured variation a lottery. Thousands of small independent
    blotches change the picture in proportion to their strength with little chance in
    it, so variation keeps growing, steadily, up to temperature 2.
    """
    if p.dice.spread <= 0:
        return
    noise = p.dice.sub("mood").noise
    cols = MOOD_CELLS
    rows = max(2, round(cols * p.h / p.w))
    cells = []
    for _ in range(cols * rows):
        v = noise.uniform(0, 255)
        cells.append(to_rgb(v + noise.uniform(-MOOD_HUE, MOOD_HUE) for _ in range(3)))
    small = Image.new("RGB", (cols, rows))
    small.putdata(cells)
    # Smooth at an eighth of the size, then a cheap bilinear stretch: looks the same, 4x faster.
    eighth = (max(cols, p.w // 8), max(rows, p.h // 8))
    wash = small.resize(eighth, Image.Resampling.BICUBIC).resize(
        p.img.size, Image.Resampling.BILINEAR
    )
    p.img = Image.blend(p.img, wash, MOOD_ALPHA_MAX * p.dice.spread)
    p.draw = ImageDraw.Draw(p.img)


def render_image(
    prompt: str, aspect_ratio: str, temperature: float, *, variation: int, scale: float = 1.0
) -> Image.Image:
    """Draw the picture for one request (an RGB image of `canvas_size(aspect_ratio, scale)`).

    The prompt alone fixes the composition; `temperature` (0-2) sets how far this call's
    `variation` moves positions, colours and counts away from it. At temperature 0 the
    result depends on the prompt and the ratio only.
    """
    scene = read_prompt(prompt)
    spread = max(0.0, min(1.0, temperature / 2.0)) ** SPREAD_POWER
    noise_key = f"{prompt}\x00{aspect_ratio}\x00{temperature!r}\x00{variation}"
    dice = Dice(composition_key(prompt), noise_key, spread)
    p = Painter(canvas_size(aspect_ratio, scale), scene, dice)
    paint_sky(p)
    paint_land(p)
    paint_subjects(p)
    paint_weather(p)
    if scene.tint is not None:
        p.img = Image.blend(p.img, Image.new("RGB", p.img.size, scene.tint), scene.tint_alpha)
        p.draw = ImageDraw.Draw(p.img)
    _paint_mood(p)
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
