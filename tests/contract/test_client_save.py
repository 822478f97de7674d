"""`Generation.save(path)`: the suffix picks the format, parameters ride along, paths behave.

The generation comes from the simulator over loopback; what was written is read back from
disk with Pillow (format, size) and `read_params` (parameters).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb.offline import OfflineServer

PROMPT = "a café «sign» at dusk, 東京"


@pytest.fixture
def gen(client: mai.Client) -> mai.Generation:
    return client.generate(PROMPT, aspect_ratio="16:9", temperature=0.4, sample=2)


@pytest.fixture
def saves(tmp_path: Path) -> Path:
    """An empty folder of its own (tmp_path also holds the client's history)."""
    folder = tmp_path / "saves"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("out.png", "PNG"),
        ("out", "PNG"),
        ("out.jpg", "JPEG"),
        ("OUT.JPEG", "JPEG"),
        ("out.webp", "WEBP"),
        ("out.v2", "PNG"),
    ],
)
def test_suffix_picks_the_format_and_parameters_come_back(
    gen: mai.Generation, saves: Path, name: str, fmt: str
) -> None:
    saved = gen.save(saves / name)
    known = Path(name).suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
    expected = name if known else name + ".png"
    assert saved == saves / expected
    assert sorted(p.name for p in saves.iterdir()) == [expected]  # no temporary left
    with Image.open(saved) as image:
        assert image.format == fmt
        assert image.size == (gen.width, gen.height)
    params = mai.read_params(saved)
    assert params == {
        "prompt": PROMPT, "aspect_ratio": "16:9", "temperature": 0.4, "sample": 2
    }  # fmt: skip
    assert mai.read_params(saved.read_bytes()) == params


def test_params_read_back_reproduce_the_call(
    client: mai.Client, server: OfflineServer, gen: mai.Generation, saves: Path
) -> None:
    posts = server.post_count
    for suffix in (".png", ".jpg", ".webp"):
        again = client.generate(**mai.read_params(gen.save(saves / f"x{suffix}")))
        assert again.cached and again.data == gen.data
    assert server.post_count == posts


def test_a_folder_gets_an_id_and_slug_name(gen: mai.Generation, saves: Path) -> None:
    folder = saves / "existing"
    folder.mkdir()
    saved = gen.save(folder)
    assert saved.parent == folder
    assert saved.name.startswith(gen.id) and saved.suffix == ".png"
    assert "cafe" in saved.name or "café" in saved.name
    fresh = gen.save(str(saves / "new-folder") + "/")
    assert fresh.parent == saves / "new-folder"
    assert fresh.name == saved.name


def test_missing_parent_folders_are_created(gen: mai.Generation, saves: Path) -> None:
    saved = gen.save(saves / "new" / "dir" / "x.jpg")
    assert saved.is_file() and mai.read_params(saved)["prompt"] == PROMPT


def test_other_image_suffixes_are_refused_before_writing(gen: mai.Generation, saves: Path) -> None:
    with pytest.raises(errors.ValidationError, match=r"\.gif"):
        gen.save(saves / "x.gif")
    assert list(saves.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway")
def test_errors_name_the_users_path_not_a_temporary_file(gen: mai.Generation, saves: Path) -> None:
    locked = saves / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError) as info:
            gen.save(locked / "x.png")
    finally:
        locked.chmod(0o700)
    assert str(locked / "x.png") in str(info.value)
    assert ".tmp" not in str(info.value)


def test_a_file_where_a_folder_should_be_names_the_users_path(
    gen: mai.Generation, saves: Path
) -> None:
    blocker = saves / "file"
    blocker.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="could not save") as info:
        gen.save(blocker / "x.png")
    assert str(blocker / "x.png") in str(info.value)
    assert ".tmp" not in str(info.value)


def test_a_jpeg_without_our_metadata_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(errors.ValidationError, match=r"photo\.jpg"):
        mai.read_params(plain)


def test_webp_xmp_over_the_text_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    from mai_image_nb import pngmeta

    path = tmp_path / "huge-xmp.webp"
    Image.new("RGB", (8, 8)).save(
        path, format="WEBP", xmp=b"<x/>" * (pngmeta.TEXT_LIMIT_BYTES // 4 + 1)
    )
    with pytest.raises(errors.ValidationError, match="larger than"):
        mai.read_params(path)


def test_webp_without_xmp_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.webp"
    Image.new("RGB", (8, 8)).save(path, format="WEBP")
    with pytest.raises(errors.ValidationError, match="no XMP"):
        mai.read_params(path.read_bytes())


def test_a_jpeg_claiming_huge_dimensions_is_read_without_decoding(
    gen: mai.Generation, saves: Path
) -> None:
    data = bytearray(gen.save(saves / "x.jpg").read_bytes())
    sof = data.index(b"\xff\xc0") if b"\xff\xc0" in data else data.index(b"\xff\xc2")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2  # height, width: 3.6 gigapixels
    assert mai.read_params(bytes(data))["prompt"] == PROMPT
