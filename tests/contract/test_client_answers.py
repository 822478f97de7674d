"""What the client does with the answers it paid for: cost, lenient base64, extra images, modes.

Every answer comes over real loopback HTTP from the simulator (`Fault.body` sends a
hand-made 2xx body), and what was kept is read back from the history on disk.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb.offline import Fault, OfflineServer


def image_bytes(mode: str = "RGB", fmt: str = "PNG", size: tuple[int, int] = (16, 12)) -> bytes:
    out = io.BytesIO()
    colour: object = {"CMYK": (0, 128, 255, 0), "I;16": 40000, "LA": (90, 200)}.get(mode, 120)
    Image.new(mode, size, colour).save(out, format=fmt)  # type: ignore[arg-type]
    return out.getvalue()


def answer(*images: str, usage: object = "default") -> bytes:
    """A 2xx body with `images` as b64_json entries and `usage` as meta.usage."""
    body: dict[str, object] = {"data": [{"b64_json": b64} for b64 in images]}
    if usage == "default":
        usage = {"credits_used": 1000, "usd_spent": 0.05}
    if usage is not None:
        body["meta"] = {"usage": usage}
    return json.dumps(body).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- money --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "usage", [None, {}, {"usd_spent": "free"}, {"usd_spent": -1}, {"usd_spent": True}]
)
def test_no_cost_answers_are_charged_at_the_estimate(
    client: mai.Client, server: OfflineServer, usage: object
) -> None:
    client.budget_usd = 0.10  # room for one image at the default estimate (0.0627), not two
    png = b64(image_bytes())
    server.script(*[Fault.body(answer(png, usage=usage))] * 10)
    refused = 0
    for i in range(10):
        try:
            client.generate(f"lamp {i}", cache=False)
        except errors.BudgetExceededError:
            refused += 1
    assert server.post_count == 1  # 10 such calls used to all be sent
    assert refused == 9
    assert client.spent_usd == pytest.approx(client.estimate())
    assert server.post_count * client.estimate() <= 0.10


def test_unreadable_2xx_body_is_charged_at_the_estimate(
    client: mai.Client, server: OfflineServer
) -> None:
    server.script(Fault.truncated_json())
    with pytest.raises(errors.ResponseError):
        client.generate("a cat", cache=False)
    assert server.post_count == 1
    assert client.spent_usd == pytest.approx(client.estimate())


def test_reported_cost_is_charged_as_reported(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.body(answer(b64(image_bytes()))))
    gen = client.generate("a cat", cache=False)
    assert gen.usd_spent == 0.05
    assert client.spent_usd == pytest.approx(0.05)


@pytest.mark.parametrize("bad", ["a lighthouse at dusk", b"a lighthouse", {"prompt": "x"}, 7])
def test_generate_many_refuses_a_bare_prompt(
    client: mai.Client, server: OfflineServer, bad: object
) -> None:
    with pytest.raises(errors.ValidationError) as info:
        client.generate_many(bad, progress=False)  # type: ignore[arg-type]
    assert info.value.field == "prompts_or_dicts"
    assert "prompts_or_dicts" in str(info.value)
    assert server.post_count == 0
    assert client.spent_usd == 0


# -- lenient base64 --------------------------------------------------------------------------


def wrapped(text: str, width: int = 76, sep: str = "\n") -> str:
    return sep.join(text[i : i + width] for i in range(0, len(text), width))


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: wrapped(s),
        lambda s: wrapped(s, 64, "\r\n") + "\n",
        lambda s: "  " + wrapped(s, 10, " \t") + "  ",
        lambda s: "data:image/png;base64," + s,
        lambda s: "DATA:image/png;charset=binary;base64," + wrapped(s),
        lambda s: s.rstrip("="),
    ],
    ids=["lf", "crlf", "spaces", "data-uri", "data-uri-wrapped", "no-padding"],
)
def test_base64_as_providers_write_it_is_decoded(
    client: mai.Client, server: OfflineServer, encode: object
) -> None:
    png = image_bytes(size=(17, 13))  # an odd size, so the base64 needs padding
    server.script(Fault.body(answer(encode(b64(png)))))  # type: ignore[operator]
    gen = client.generate("a cat", cache=False)
    assert gen.data == png
    assert (gen.width, gen.height) == (17, 13)


def test_a_data_uri_in_url_is_decoded_not_fetched(
    client: mai.Client, server: OfflineServer
) -> None:
    png = image_bytes()
    body = json.dumps({"data": [{"url": "data:image/png;base64," + b64(png)}]}).encode()
    server.script(Fault.body(body))
    assert client.generate("a cat", cache=False).data == png
    assert server.post_count == 1


def test_garbage_base64_is_still_refused(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.body(answer("this is not base64!")))
    with pytest.raises(errors.ResponseError, match="base64"):
        client.generate("a cat", cache=False)


# -- several images ------------------------------------------------------------------------


def test_every_image_of_an_answer_is_kept_as_the_next_free_samples(
    client: mai.Client, server: OfflineServer
) -> None:
    first, second, third = (image_bytes(size=(8 + i, 8)) for i in range(3))
    client.generate("a cat", sample=1)  # sample 1 is taken: the extras must skip it
    server.script(Fault.body(answer(b64(first), b64(second), b64(third))))
    gen = client.generate("a cat", cache=False)
    assert gen.data == first and gen.sample == 0
    assert client.history is not None
    kept = {g.sample: g for g in client.history.search("a cat")}
    assert kept[2].data == second
    assert kept[3].data == third
    assert len(kept) == 4
    posts = server.post_count
    assert client.generate("a cat", sample=3).data == third  # a cache hit: nothing sent
    assert server.post_count == posts


def test_extra_images_are_kept_without_a_history(server: OfflineServer) -> None:
    first, second = image_bytes(size=(8, 8)), image_bytes(size=(9, 9))
    with mai.Client(base_url=server.url, history=False) as c:
        server.script(Fault.body(answer(b64(first), b64(second))))
        assert c.generate("a dog", cache=False).data == first
        posts = server.post_count
        assert c.generate("a dog", sample=1).data == second
        assert server.post_count == posts


def test_when_the_first_image_is_unusable_the_others_are_still_kept(
    client: mai.Client, server: OfflineServer
) -> None:
    good = image_bytes(size=(10, 10))
    server.script(Fault.body(answer(b64(b"plain text, not an image"), b64(good))))
    with pytest.raises(errors.ResponseError):
        client.generate("a fox", cache=False)
    posts = server.post_count
    assert client.generate("a fox", sample=1).data == good
    assert server.post_count == posts


# -- any decodable mode ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("CMYK", "JPEG"), ("P", "PNG"), ("I;16", "PNG"), ("LA", "PNG"), ("L", "JPEG"), ("1", "PNG")],
)
def test_any_mode_displays_and_saves(
    client: mai.Client, server: OfflineServer, tmp_path: Path, mode: str, fmt: str
) -> None:
    data = image_bytes(mode, fmt)
    server.script(Fault.body(answer(b64(data))))
    gen = client.generate(f"a {mode} cat", cache=False)
    assert gen.data == data
    with Image.open(io.BytesIO(gen._repr_png_())) as shown:
        assert shown.format == "PNG"
        assert shown.mode in ("1", "L", "LA", "P", "RGB", "RGBA")
        assert shown.size == (16, 12)
    for suffix in (".png", ".jpg", ".webp"):
        saved = gen.save(tmp_path / f"{mode}{suffix}")
        assert mai.read_params(saved)["prompt"] == f"a {mode} cat"
        with Image.open(saved) as back:
            assert back.size == (16, 12)
