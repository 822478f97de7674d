"""PNG parameters (embed_params, read_params, read_record), atomic writes and safe file names."""

from __future__ import annotations

import email.utils
import io
import json
import os
import struct
import tracemalloc
import unicodedata
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from mai_image_nb import pngmeta
from mai_image_nb._files import (
    MAX_NAME_BYTES,
    safe_filename,
    unique_path,
    write_atomic,
    write_new_file,
)
from mai_image_nb._version import __version__
from mai_image_nb.errors import ValidationError
from mai_image_nb.imagemeta import read_params
from mai_image_nb.pngmeta import embed_params, read_record

from .crash_writer import image_bytes, make_generation

SIG = b"\x89PNG\r\n\x1a\n"
MIB = 1024 * 1024

prompts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=4000)


# -- helpers: a tiny PNG chunk toolkit, independent of the code under test ------------------


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def chunks_of(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk, checking each CRC."""
    assert png.startswith(SIG)
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        out.append((kind, body))
        pos += 12 + length
    return out


def itxt(keyword: str, text: bytes, *, compressed: bool = False) -> bytes:
    payload = zlib.compress(text) if compressed else text
    flag = b"\x01\x00" if compressed else b"\x00\x00"
    return chunk(b"iTXt", keyword.encode("latin-1") + b"\x00" + flag + b"\x00\x00" + payload)


def with_chunks(png: bytes, *extra: bytes) -> bytes:
    """`png` with `extra` chunks inserted right after IHDR."""
    ihdr_end = 8 + 12 + 13
    return png[:ihdr_end] + b"".join(extra) + png[ihdr_end:]


def plain_png(size: tuple[int, int] = (16, 12), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "teal").save(out, format="PNG")
    return out.getvalue()


def ihdr(width: int, height: int) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def text_of(png: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return dict(image.text)  # type: ignore[attr-defined]


def record(prompt: str = "a lighthouse at dusk", **params: Any) -> dict[str, object]:
    return make_generation("20260101-000000-abcd", prompt, **params).to_dict()


# -- embed_params ------------------------------------------------------------------------


def test_roundtrip_gives_generate_kwargs() -> None:
    gen = make_generation("g1", "a red fox", aspect_ratio="16:9", temperature=0.7, sample=2)
    png = embed_params(gen.data, gen.to_dict())
    assert read_params(png) == {
        "prompt": "a red fox",
        "aspect_ratio": "16:9",
        "temperature": 0.7,
        "sample": 2,
    }
    assert read_record(png) == gen.to_dict()


def test_token_limits_only_when_set() -> None:
    gen = make_generation("g2", "x", max_tokens=10, max_completion_tokens=20)
    params = read_params(embed_params(gen.data, gen.to_dict()))
    assert params["max_tokens"] == 10
    assert params["max_completion_tokens"] == 20
    assert "model" not in params


def test_standard_keywords_for_ordinary_viewers() -> None:
    long_prompt = "a very long prompt " * 20
    png = embed_params(plain_png(), record(long_prompt))
    text = text_of(png)
    assert text["Description"] == long_prompt
    assert long_prompt.startswith(text["Title"].rstrip("…"))
    assert len(text["Title"]) <= pngmeta.TITLE_MAX_CHARS
    assert text["Software"] == f"mai_image_nb {__version__} · microsoft/mai-image-2.5"
    assert email.utils.parsedate_to_datetime(text["Creation Time"]).tzinfo is not None
    assert json.loads(text[pngmeta.KEYWORD])["prompt"] == long_prompt
    kinds = {kind for kind, _ in chunks_of(png) if kind in (b"tEXt", b"zTXt", b"iTXt")}
    assert kinds == {b"iTXt"}


def test_png_pixel_chunks_unchanged_and_crcs_valid() -> None:
    original = image_bytes(7, size=(40, 30))
    png = embed_params(original, record())
    before = [(k, b) for k, b in chunks_of(original) if k != b"IEND"]
    after = [(k, b) for k, b in chunks_of(png) if k not in (b"iTXt", b"IEND")]
    assert after == before  # IHDR and IDAT byte for byte: no re-encoding
    assert chunks_of(png)[-1][0] == b"IEND"
    with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(png)) as b:
        assert a.tobytes() == b.tobytes()


def test_existing_text_with_our_keywords_is_replaced() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "old title")
    info.add_text(pngmeta.KEYWORD, "{}", zip=True)
    info.add_itxt("Description", "old", zip=False)
    info.add_text("Author", "kept")
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="PNG", pnginfo=info)
    png = embed_params(embed_params(out.getvalue(), record("first")), record("second"))
    text_chunks = [body for kind, body in chunks_of(png) if kind in (b"tEXt", b"zTXt", b"iTXt")]
    keywords = [body.split(b"\x00")[0] for body in text_chunks]
    assert sorted(keywords) == sorted(
        [b"mai_image_nb", b"Title", b"Description", b"Software", b"Creation Time", b"Author"]
    )
    assert read_params(png)["prompt"] == "second"
    assert text_of(png)["Author"] == "kept"


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_jpeg_and_webp_become_png(fmt: str) -> None:
    gen = make_generation("g3", "a blue whale", image_format=fmt)
    png = embed_params(gen.data, gen.to_dict())
    assert png.startswith(SIG)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (gen.width, gen.height)
    assert read_params(png)["prompt"] == "a blue whale"


def test_cmyk_jpeg_is_converted() -> None:
    out = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 50, 100, 0)).save(out, format="JPEG")
    with Image.open(io.BytesIO(embed_params(out.getvalue(), record()))) as image:
        assert image.mode == "RGB"


@pytest.mark.parametrize("data", [b"", b"hello", SIG + b"\x00\x00", b"GIF89a" + b"\x00" * 40])
def test_embed_rejects_what_is_not_png_jpeg_or_webp(data: bytes) -> None:
    with pytest.raises(ValidationError):
        embed_params(data, record())


def test_only_the_record_is_written() -> None:
    rec = record("plain prompt")
    png = embed_params(plain_png(), rec)
    texts = {body.split(b"\x00")[0]: body for kind, body in chunks_of(png) if kind == b"iTXt"}
    assert json.loads(texts[b"mai_image_nb"].split(b"\x00", 5)[5]) == rec
    assert b"AIMLAPI" not in png
    assert b"Authorization" not in png


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=prompts)
def test_any_prompt_survives_embed_and_read(prompt: str) -> None:
    png = embed_params(plain_png((2, 2)), record(prompt))
    assert read_params(png)["prompt"] == prompt
    assert read_record(png)["prompt"] == prompt


# -- read_params: untrusted input --------------------------------------------------------


def ours(text: bytes, *, compressed: bool = False) -> bytes:
    return with_chunks(plain_png(), itxt(pngmeta.KEYWORD, text, compressed=compressed))


def other_image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format=fmt)
    return out.getvalue()


GOOD = embed_params(plain_png(), record())
BAD_INPUTS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"hello world, not an image", id="text"),
    pytest.param(other_image("JPEG"), id="jpeg"),
    pytest.param(other_image("WEBP"), id="webp"),
    pytest.param(other_image("TIFF"), id="tiff"),
    pytest.param(other_image("GIF"), id="gif"),
    pytest.param(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", id="eps"),
    pytest.param(b"\xc5\xd0\xd3\xc6" + b"\x00" * 60, id="eps-binary"),
    pytest.param(SIG, id="signature-only"),
    pytest.param(GOOD[:40], id="truncated-in-chunk"),
    pytest.param(GOOD[: GOOD.index(b"mai_image_nb") + 30], id="truncated-in-ours"),
    pytest.param(plain_png(), id="no-our-chunk"),
    pytest.param(SIG + chunk(b"tEXt", b"mai_image_nb\x00{}") + GOOD[8:], id="text-before-ihdr"),
    pytest.param(ours(b"{not json"), id="bad-json"),
    pytest.param(ours(b"[1, 2]"), id="json-not-object"),
    pytest.param(ours(b"[" * 200_000 + b"]" * 200_000), id="json-too-deep"),
    pytest.param(ours(b"\xff\xfe{}"), id="not-utf8"),
    pytest.param(ours(b'{"aspect_ratio": "1:1"}'), id="no-prompt"),
    pytest.param(ours(b'{"prompt": "x", "temperature": 5}'), id="tampered-temperature"),
    pytest.param(ours(b'{"prompt": "", "temperature": 1}'), id="tampered-prompt"),
    pytest.param(ours(b'{"prompt": "x", "max_tokens": true}'), id="tampered-tokens"),
    pytest.param(ours(b'{"prompt": "x", "aspect_ratio": "<script>"}'), id="tampered-ratio"),
    pytest.param(ours(b"not zlib", compressed=True), id="bad-compression"),
    pytest.param(ours(zlib.compress(b'{"prompt": "x"}')[:-6], compressed=False), id="binary"),
    pytest.param(
        GOOD.replace(b"mai_image_nb\x00\x00\x00\x00\x00{", b"mai_image_nb\x00\x00\x00\x00\x00["),
        id="bad-crc",
    ),
]


@pytest.mark.parametrize("data", BAD_INPUTS)
def test_bad_inputs_are_validation_errors(data: bytes) -> None:
    with pytest.raises(ValidationError) as info:
        read_params(data)
    assert str(info.value)  # a readable one-line message
    assert "\n" not in str(info.value)


def test_messages_name_the_problem(tmp_path: Path) -> None:
    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(other_image("JPEG"))
    with pytest.raises(ValidationError, match=r"photo\.jpg.* is not a PNG, JPEG or WebP written"):
        read_params(jpeg)  # the public reader takes all three formats
    with pytest.raises(
        ValidationError, match=r"photo\.jpg.*not a PNG written by mai_image_nb.*JPEG"
    ):
        read_record(jpeg)  # the PNG chunk reader names what it found instead
    with pytest.raises(ValidationError, match="no 'mai_image_nb' text chunk"):
        read_params(plain_png())
    with pytest.raises(ValidationError) as info:
        read_params(ours(b'{"prompt": "x", "temperature": 5}'))
    assert info.value.field == "temperature"


def test_reads_paths_pathlikes_and_buffers(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(GOOD)
    expected = read_params(GOOD)
    assert read_params(str(path)) == expected
    assert read_params(path) == expected
    assert read_params(bytearray(GOOD)) == expected
    assert read_params(memoryview(GOOD)) == expected
    with pytest.raises(FileNotFoundError):
        read_params(tmp_path / "missing.png")


@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt-compressed"])
def test_other_text_encodings_of_our_chunk_are_read(kind: str) -> None:
    text = json.dumps({"prompt": "café", "temperature": 0.5}).encode("latin-1")
    body = {
        "tEXt": b"mai_image_nb\x00" + text,
        "zTXt": b"mai_image_nb\x00\x00" + zlib.compress(text),
        "iTXt-compressed": b"mai_image_nb\x00\x01\x00\x00\x00" + zlib.compress(text),
    }[kind]
    png = with_chunks(plain_png(), chunk(kind[:4].encode(), body))
    assert read_params(png)["temperature"] == 0.5


def bomb(size: int) -> bytes:
    packer = zlib.compressobj(9)
    block = b" " * MIB
    parts = [packer.compress(b'{"prompt": "x", "pad": "')]
    parts += [packer.compress(block) for _ in range(size // MIB)]
    return b"".join(parts) + packer.compress(b'"}') + packer.flush()


@pytest.fixture(scope="module")
def bomb_100mib() -> bytes:
    return bomb(100 * MIB)


@pytest.mark.parametrize("kind", ["iTXt", "zTXt"])
def test_compressed_text_bomb_is_refused_quickly(kind: str, bomb_100mib: bytes) -> None:
    prefix = b"mai_image_nb\x00\x01\x00\x00\x00" if kind == "iTXt" else b"mai_image_nb\x00\x00"
    png = with_chunks(plain_png(), chunk(kind.encode(), prefix + bomb_100mib))
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError, match="larger than"):
            read_params(png)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB  # inflating 100 MiB would hold it; its speed is in bench/reliability


def test_bomb_under_another_keyword_is_never_inflated(bomb_100mib: bytes) -> None:
    png = with_chunks(GOOD, chunk(b"zTXt", b"Comment\x00\x00" + bomb_100mib))
    tracemalloc.start()
    try:
        assert read_params(png)["prompt"] == "a lighthouse at dusk"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB  # the other chunk is skipped, never inflated


def test_plain_text_over_the_limit_is_refused() -> None:
    big = json.dumps({"prompt": "x", "pad": " " * (pngmeta.TEXT_LIMIT_BYTES + 10)}).encode()
    with pytest.raises(ValidationError, match="larger than"):
        read_params(ours(big))


@pytest.mark.parametrize("side", [20_000, 10_000])
def test_huge_dimensions_are_never_decoded(side: int) -> None:
    png = SIG + ihdr(side, side) + GOOD[8 + 25 :]
    assert read_params(png)["prompt"] == "a lighthouse at dusk"
    with pytest.raises(ValidationError, match="no 'mai_image_nb'"):
        read_params(SIG + ihdr(side, side) + plain_png()[33:])


def test_60_mib_file_is_streamed_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    size = 60 * MIB
    with path.open("wb") as file:  # a huge IDAT, then our chunk (after the pixels: ignored)
        file.write(SIG + ihdr(8000, 8000) + struct.pack(">I", size) + b"IDAT")
        file.truncate(size)
        file.seek(0, os.SEEK_END)
        file.write(b"\x00" * 4 + itxt(pngmeta.KEYWORD, b'{"prompt": "x"}') + chunk(b"IEND", b""))
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError):
            read_params(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MIB


def test_endless_small_chunks_are_refused() -> None:
    filler = chunk(b"xxXx", b"") * (pngmeta.MAX_CHUNKS_BEFORE_PIXELS + 1)
    with pytest.raises(ValidationError, match="more than"):
        read_params(with_chunks(GOOD, filler))


def test_chunk_length_claiming_gigabytes_is_truncation() -> None:
    lying = struct.pack(">I", 0x7FFF_FFF0) + b"tEXt" + b"mai_image_nb\x00{}"
    with pytest.raises(ValidationError, match="truncated"):
        read_params(with_chunks(plain_png(), lying))


# -- write_atomic ------------------------------------------------------------------------


def test_write_atomic_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(os.listdir(tmp_path)) == ["a.png"]


def test_write_atomic_uses_a_hidden_temp_in_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []
    real = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append((str(src), str(dst)))
        assert Path(src).read_bytes() == b"data"
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_atomic(tmp_path / "x.png", b"data")
    ((src, dst),) = seen
    assert Path(src).parent == tmp_path
    assert Path(src).name.startswith(".")
    assert src.endswith(".tmp")
    assert dst == str(tmp_path / "x.png")


def test_write_atomic_failure_removes_temp_and_keeps_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"old")

    def broken(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk on fire"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["x.png"]


def test_write_atomic_keeps_ordinary_permissions(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    write_atomic(tmp_path / "atomic", b"")
    assert (tmp_path / "atomic").stat().st_mode == plain.stat().st_mode


# -- safe file names ---------------------------------------------------------------------

RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{d}{n}" for d in ("COM", "LPT") for n in range(10)}
HOSTILE = [
    "../../x",
    "/etc/passwd",
    "..",
    ".",
    "",
    "CON",
    "con",
    "NUL",
    "com1",
    "COM¹",
    "LPT9",
    "a\x00b",
    "\x00",
    "x" * 300,
    "é" * 300,
    "🦄" * 300,
    "\u202egnp.exe",
    "abc\u200fdef",
    "\u202e\u200f\u200e\u2066",
    "???***",
    "C:\\Windows\\system32",
    'a/b\\c:d*e?f"g<h>i|j',
    "line\nbreak\ttab\rcr",
    "🦄🌊 unicorn at sea",
    " . ",
    "\u3000",
]


def assert_safe(name: str, folder: Path) -> None:
    assert name
    assert name not in (".", "..")
    assert "/" not in name
    assert "\\" not in name
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    bad_categories = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
    assert not any(unicodedata.category(ch) in bad_categories for ch in name)
    assert name.split(".")[0].upper() not in RESERVED
    assert not name.startswith((".", " ", "-"))
    assert not name.endswith((".", " "))
    assert (folder / name).resolve().parent == folder.resolve()


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_ids_and_prompts_give_safe_names(text: str, tmp_path: Path) -> None:
    for name in (
        safe_filename(text, ext="png"),
        safe_filename("20260101-abc", text, ext="png"),
        safe_filename(text, text, ext=text),
    ):
        assert_safe(name, tmp_path)


def test_names_read_well() -> None:
    assert safe_filename("20260101-abc", "A Lighthouse, at dusk!") == (
        "20260101-abc-a-lighthouse-at-dusk.png"
    )
    assert safe_filename("", "???", ext="png") == "image.png"
    assert safe_filename("CON", ext="png") == "con_.png"
    assert safe_filename("id", "🦄🌊 unicorn at sea") == "id-unicorn-at-sea.png"
    assert safe_filename("id", "\u202egnp.exe") == "id-gnp-exe.png"
    assert safe_filename("id", "灯台 at dusk") == "id-灯台-at-dusk.png"


@settings(max_examples=200, deadline=None)
@given(gid=st.text(), prompt=st.text(), ext=st.sampled_from(["png", "json", "csv", ".PNG", ""]))
def test_any_text_gives_a_safe_name(gid: str, prompt: str, ext: str) -> None:
    assert_safe(safe_filename(gid, prompt, ext=ext), Path("/tmp/export"))


def test_unique_path_adds_numbers_within_255_bytes(tmp_path: Path) -> None:
    name = safe_filename("é" * 300, ext="png")
    first = unique_path(tmp_path, name)
    assert first == tmp_path / name
    first.write_bytes(b"1")
    second = unique_path(tmp_path, name)
    assert second.name.endswith("-2.png")
    assert len(second.name.encode()) <= MAX_NAME_BYTES
    second.write_bytes(b"2")
    assert unique_path(tmp_path, name).name.endswith("-3.png")


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "a\x00b", "x" * 256 + ".png"]
)
def test_unique_path_and_write_new_file_refuse_non_names(bad: str, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(ValidationError):
        unique_path(folder, bad)
    with pytest.raises(ValidationError):
        write_new_file(folder, bad, b"x")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out"]


def test_write_new_file_never_overwrites(tmp_path: Path) -> None:
    paths = [write_new_file(tmp_path, "a.png", bytes([i])) for i in range(4)]
    assert [p.name for p in paths] == ["a.png", "a-2.png", "a-3.png", "a-4.png"]
    assert [p.read_bytes() for p in paths] == [b"\x00", b"\x01", b"\x02", b"\x03"]
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in paths)  # no temp left


def test_write_new_file_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError("hard links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "a.png").write_bytes(b"old")
    path = write_new_file(tmp_path, "a.png", b"new")
    assert path.name == "a-2.png"
    assert path.read_bytes() == b"new"
    assert (tmp_path / "a.png").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["a-2.png", "a.png"]


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    gid=st.sampled_from(HOSTILE) | st.text(max_size=40), prompt=st.sampled_from(HOSTILE) | st.text()
)
def test_hostile_names_never_leave_the_folder_nor_overwrite(
    gid: str, prompt: str, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    folder.mkdir(exist_ok=True)
    before = {p: p.read_bytes() for p in folder.iterdir()}
    path = write_new_file(folder, safe_filename(gid, prompt, ext="png"), b"new")
    assert path.parent == folder
    assert path not in before
    assert {p: p.read_bytes() for p in folder.iterdir() if p != path} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
