"""The simulator's pictures teach: words, ratio and temperature visibly change them."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import pytest
from PIL import Image, ImageChops, ImageStat

from mai_image_nb.offline import render
from mai_image_nb.offline.canvas import Dice, Painter, Scene
from mai_image_nb.offline.render import (
    canvas_size,
    encode_png,
    read_prompt,
    render_image,
    render_png,
)
from mai_image_nb.offline.scenes import paint_land, paint_sky
from mai_image_nb.offline.subjects import paint_subjects
from mai_image_nb.params import ASPECT_RATIOS, IMAGE_SIZES

SMALL = 0.25  # 256x256 for 1:1: enough pixels to measure, quick to draw


def draw(
    prompt: str, temperature: float = 0.0, variation: int = 0, ratio: str = "1:1"
) -> Image.Image:
    return render_image(prompt, ratio, temperature, variation=variation, scale=SMALL)


def mean(image: Image.Image, box: tuple[float, float, float, float] = (0, 0, 1, 1)) -> list[float]:
    """Mean R, G, B over a box given in fractions of the canvas."""
    w, h = image.size
    crop = image.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))
    return list(ImageStat.Stat(crop).mean)


def difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def png_chunks(data: bytes) -> Iterator[bytes]:
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        yield data[at + 4 : at + 8]
        at += 12 + length


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_canvas_follows_the_ratio_table(ratio: str) -> None:
    assert canvas_size(ratio) == IMAGE_SIZES[ratio]
    width, height = IMAGE_SIZES[ratio]
    assert canvas_size(ratio, 0.5) == (round(width * 0.5), round(height * 0.5))
    assert canvas_size(ratio, 0.0001) == (8, 8)
    image = render_image("a boat at sea", ratio, 1.0, variation=3, scale=0.1)
    assert image.size == canvas_size(ratio, 0.1) and image.mode == "RGB"


def test_every_known_word_draws_at_any_size() -> None:
    words = [w for table in (render._SKY_OF, render._LAND_OF, render._SUBJECT_OF, render.COLOURS)
             for w in table]  # fmt: skip
    for i, word in enumerate(words):
        for scale in (0.0001, 0.05):
            prompt = f"a {word} and a {words[(i * 7) % len(words)]} {words[(i * 13) % len(words)]}"
            render_image(prompt, ASPECT_RATIOS[i % 7], 2.0 * (i % 3) / 2, variation=i, scale=scale)


@pytest.mark.parametrize(
    "prompt",
    ["", " ", "x" * 4000, "\x00\n\t\u202e", "\ud800 lone surrogate", "猫と灯台", "🐱" * 50],
)
def test_odd_prompts_still_draw(prompt: str) -> None:
    image = render_image(prompt, "16:9", 1.3, variation=5, scale=0.2)
    assert image.size == canvas_size("16:9", 0.2)


def test_temperature_zero_ignores_variation() -> None:
    assert (
        draw("a cat in the snow", 0.0, 1).tobytes() == draw("a cat in the snow", 0.0, 99).tobytes()
    )
    assert render_png("a cat", "4:3", 0.0, variation=0) == render_png(
        "a cat", "4:3", 0, variation=7
    )


def test_same_variation_same_pixels() -> None:
    assert draw("a city", 1.5, 42).tobytes() == draw("a city", 1.5, 42).tobytes()


def test_higher_temperature_varies_more() -> None:
    prompts = ["a red lighthouse at sunset by the sea", "a snowy forest at night", "a house"]
    spread = {
        t: sum(difference(draw(p, t, 1), draw(p, t, 2)) for p in prompts) / len(prompts)
        for t in (0.0, 0.3, 1.0, 2.0)
    }
    assert spread[0.0] == 0
    assert 0 < spread[0.3] < spread[1.0] < spread[2.0]
    assert spread[2.0] > 12  # two calls at 2.0 differ at a glance


def test_prompt_alone_fixes_the_composition() -> None:
    assert difference(draw("a boat at sea"), draw("a boat on the sea")) > 0
    assert draw("a boat at sea").tobytes() != draw("a boat at sea", ratio="4:3").tobytes()


def changed(a: Image.Image, b: Image.Image) -> Image.Image:
    """A mask (L) of the pixels that differ, the caption strip at the bottom left out."""
    mask = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v else 0)
    w, h = mask.size
    mask.paste(0, (0, round(h * 0.95), w, h))
    return mask


def masked_mean(image: Image.Image, mask: Image.Image) -> list[float]:
    return list(ImageStat.Stat(image, mask).mean)


def share(mask: Image.Image) -> float:
    return mask.histogram()[255] / (mask.width * mask.height)


@pytest.mark.parametrize("subject", ["house", "cat", "lighthouse", "car", "fox", "whale", "fish"])
def test_a_colour_word_before_a_subject_colours_that_subject_only(subject: str) -> None:
    plain = draw(f"a {subject}")
    for colour, (main, other) in {"red": (0, 2), "blue": (2, 0)}.items():
        coloured = draw(f"a {colour} {subject}")
        mask = changed(plain, coloured)
        assert 0.005 < share(mask) < 0.3  # the subject changed, nothing else did
        rgb = masked_mean(coloured, mask)
        assert rgb[main] > rgb[other] + 60, (colour, rgb)


def test_a_red_fox_in_the_snow_is_red_on_white_snow() -> None:
    fox = draw("a red fox in the snow")
    mask = changed(draw("a fox in the snow"), fox)
    r, g, b = masked_mean(fox, mask)
    assert r > g + 80 and r > b + 80  # a red fox
    snow = ImageChops.invert(mask)
    snow.paste(0, (0, 0, snow.width, round(snow.height * 0.7)))  # the ground only
    r, g, b = masked_mean(fox, snow)
    assert min(r, g, b) > 180  # snow white (a cool white: blue highest), not pink
    assert r <= g + 5 and r <= b + 5


def test_colour_words_of_no_subject_tint_the_whole_picture() -> None:
    plain, red = mean(draw("a field")), mean(draw("a field in red tones"))
    assert red[0] - red[2] > plain[0] - plain[2] + 20
    black, white = mean(draw("a black and dark field")), mean(draw("a white field"))
    assert sum(black) + 60 < sum(plain) < sum(white) - 20


def test_a_colour_word_keeps_the_composition() -> None:
    # Only the colour changes: the same layout, so a class can compare two prompts.
    assert render.composition_key("a Red fox, in BLUE snow") == "a fox, in snow"
    mask = changed(draw("a green house in a forest"), draw("a house in a forest"))
    assert share(mask) < 0.2


@pytest.mark.parametrize(
    "subject",
    ["fox", "whale", "cat", "boat", "house", "tree", "person", "car", "bird", "fish", "dog",
     "lighthouse", "castle", "rocket", "balloon", "flower"],
)  # fmt: skip
def test_every_subject_draws_a_shape_of_its_own(subject: str) -> None:
    scene = read_prompt(f"a {subject}")
    assert scene.subjects == (subject,)
    empty = Scene(scene.sky, scene.lands, (), None, 0.0, ())

    def paint(scene: Scene) -> Image.Image:
        p = Painter(canvas_size("1:1", SMALL), scene, Dice("k", "k", 0.0))
        paint_sky(p)
        paint_land(p)
        paint_subjects(p)
        return p.img

    mask = changed(paint(empty), paint(scene))
    assert 0.004 < share(mask) < 0.3, share(mask)  # visible, and not the whole picture
    left, top, right, bottom = mask.getbbox() or (0, 0, 0, 0)
    assert right - left > 0.08 * mask.width and bottom - top > 0.05 * mask.height


def test_water_subjects_bring_their_water() -> None:
    assert read_prompt("a blue whale").lands == {"sea"}
    assert read_prompt("a fish").lands == {"sea"}
    assert read_prompt("a whale in the desert").lands == {"desert"}


def test_night_is_dark_with_stars_and_a_moon() -> None:
    day, night = draw("a field"), draw("a field at night")
    assert sum(mean(night)) < sum(mean(day)) / 2
    sky = night.crop((0, 0, night.width, night.height // 3)).convert("L")
    assert ImageStat.Stat(sky).extrema[0][1] > 200  # stars and the moon shine in a dark sky
    assert ImageStat.Stat(sky).median[0] < 70


def test_sunset_is_warm() -> None:
    day, sunset = (
        mean(draw("a field"), (0, 0, 1, 0.5)),
        mean(draw("a field at sunset"), (0, 0, 1, 0.5)),
    )
    assert sunset[0] - sunset[2] > day[0] - day[2] + 60


def test_sea_snow_forest_city_desert_change_the_ground() -> None:
    ground = (0, 0.75, 1, 0.95)
    plain = mean(draw("a field"), ground)
    sea, snow = mean(draw("the sea"), ground), mean(draw("snow"), ground)
    forest, desert = mean(draw("a forest"), ground), mean(draw("a desert"), ground)
    assert sea[2] > sea[1] and plain[1] > plain[2]  # blue water, green grass
    assert min(snow) > 180
    assert sum(forest) < sum(plain)
    assert desert[0] > plain[0] + 60
    city = draw("a city at night")
    red, green, blue = (
        band.point(lambda v, k=k: 255 if (v > k if k > 0 else v < -k) else 0)
        for band, k in zip(city.split(), (200, 160, -160), strict=True)
    )
    lit = ImageChops.multiply(ImageChops.multiply(red, green), blue).histogram()[255]
    assert lit > 100  # lit windows
    assert difference(draw("a city"), draw("a field")) > 10
    assert difference(draw("mountains"), draw("a field")) > 10


def test_subject_words_add_a_subject() -> None:
    for subject in ("lighthouse", "cat", "tree", "house", "boat", "castle", "rocket", "balloon"):
        assert difference(draw(f"a meadow with a {subject}"), draw("a meadow with a")) > 1


def test_read_prompt() -> None:
    scene = read_prompt("A Red lighthouse at SUNSET by the sea, and a black cat, and a boat")
    assert scene.sky == "sunset" and scene.lands == {"sea"}
    assert scene.subjects == ("lighthouse", "cat")  # at most two
    assert scene.subject_colours == (render.COLOURS["red"], render.COLOURS["black"])
    assert read_prompt("a lighthouse, red").subject_colours == (render.COLOURS["red"],)
    assert read_prompt("a lighthouse, red").tint is None  # the colour went to the subject
    assert scene.tint is None
    assert read_prompt("a cat and a blue house").subject_colours == (None, render.COLOURS["blue"])
    plain = read_prompt("something abstract")
    assert (plain.sky, plain.lands, plain.subjects, plain.tint) == ("day", frozenset(), (), None)


def test_caption_strip_darkens_the_bottom() -> None:
    image = draw("a snowy field", ratio="16:9")
    strip = mean(image, (0, 0.975, 1, 1))
    above = mean(image, (0, 0.9, 1, 0.95))
    assert sum(strip) < sum(above) / 2


def test_png_has_no_text_chunks_and_round_trips() -> None:
    data = render_png("a cat at night", "3:2", 0.7, variation=1, scale=0.2)
    kinds = list(png_chunks(data))
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert not {b"tEXt", b"zTXt", b"iTXt"} & set(kinds)
    assert Image.open(io.BytesIO(data)).size == canvas_size("3:2", 0.2)
    assert encode_png(Image.new("RGB", (8, 8))).startswith(b"\x89PNG")
