"""answers.py: what a 2xx answer holds, read leniently; images checked by their header only.

The client's side of these runs over loopback in tests/contract/test_client_answers.py.
"""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from mai_image_nb import errors
from mai_image_nb.answers import ImageRef, image_refs, inspect_image, load_answer, parse_usage
from mai_image_nb.offline import faults
from mai_image_nb.transport import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS


def image_bytes(fmt: str, size: tuple[int, int] = (8, 6)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp")])
def test_accepted_formats(fmt: str, name: str) -> None:
    assert inspect_image(image_bytes(fmt)) == (name, 8, 6)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(faults.NOT_AN_IMAGE, "not a PNG, JPEG or WebP", id="text"),
        pytest.param(image_bytes("GIF"), "not a PNG, JPEG or WebP", id="gif"),
        pytest.param(image_bytes("PNG")[:40], "could not be read", id="truncated"),
        pytest.param(faults.bomb_png(7000, 7000), "megapixels", id="over-40-megapixels"),
        pytest.param(faults.bomb_png(), "megapixels", id="bomb"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(MAX_IMAGE_BYTES), "cap", id="too-many-bytes"),
    ],
)
def test_refused_images_name_the_cause(data: bytes, match: str) -> None:
    with pytest.raises(errors.ResponseError, match=match):
        inspect_image(data)


def test_the_pixel_cap_is_the_documented_one() -> None:
    assert MAX_IMAGE_PIXELS == 40_000_000
    assert MAX_IMAGE_BYTES == 50 * 1024 * 1024


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n-some-bytes").decode("ascii")


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(PNG, id="plain"),
        pytest.param("\n".join(PNG[i : i + 8] for i in range(0, len(PNG), 8)), id="line-breaks"),
        pytest.param(" " + PNG + " \n", id="spaces"),
        pytest.param("data:image/png;base64," + PNG, id="data-uri"),
        pytest.param(PNG.rstrip("="), id="no-padding"),
    ],
)
def test_base64_is_read_as_providers_write_it(written: str) -> None:
    (ref,) = image_refs({"data": [{"b64_json": written}]})
    assert ref == ImageRef(None, base64.b64decode(PNG))


def test_every_usable_image_is_kept_in_order() -> None:
    refs = image_refs(
        {"data": [{"url": "https://cdn.example/1.png"}, {"b64_json": "!!"}, {"b64_json": PNG}]}
    )
    assert [ref.url for ref in refs] == ["https://cdn.example/1.png", None]


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        pytest.param({}, "no images", id="no-data"),
        pytest.param({"data": []}, "no images", id="empty"),
        pytest.param({"data": [{"b64_json": "!!"}]}, "not valid base64", id="bad-base64"),
        pytest.param({"data": [{"url": "ftp://x"}]}, "neither", id="bad-url"),
        pytest.param({"data": ["x"]}, "not an object", id="not-an-object"),
    ],
)
def test_answers_without_a_usable_image_name_the_cause(
    payload: dict[str, object], match: str
) -> None:
    with pytest.raises(errors.ResponseError, match=match):
        image_refs(payload)


def test_load_answer_wants_a_json_object() -> None:
    assert load_answer(b'{"data": []}') == {"data": []}
    for body in (b"<html>", b"[1, 2]", b"\xff"):
        with pytest.raises(errors.ResponseError):
            load_answer(body)


@pytest.mark.parametrize(
    ("meta", "usd"),
    [
        pytest.param({"usage": {"usd_spent": 0.05, "credits_used": 3}}, 0.05, id="usable"),
        pytest.param({"usage": {"usd_spent": -1}}, None, id="negative"),
        pytest.param({"usage": {"usd_spent": "0.05"}}, None, id="text"),
        pytest.param({}, None, id="missing"),
        pytest.param("x", None, id="not-an-object"),
    ],
)
def test_parse_usage_reads_only_a_usable_cost(meta: object, usd: float | None) -> None:
    usage = parse_usage({"meta": meta})
    assert (usage.usd_spent if usage is not None else None) == usd
