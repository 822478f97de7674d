"""Fuzzing the two places where arbitrary text meets files: saved PNGs and exported names.

Prompts go through a real call (the simulator answers in base64), `Generation.save()` and
`read_params()`; hostile ids and prompts go through `History.export` end to end (the unit
tests in tests/unit/test_pngmeta.py cover `safe_filename` and `write_new_file` alone).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb._files import MAX_NAME_BYTES
from mai_image_nb.export import export_generations
from mai_image_nb.generation import Generation
from mai_image_nb.imagemeta import read_params
from mai_image_nb.offline import OfflineServer
from mai_image_nb.params import ASPECT_RATIOS, PROMPT_MAX_CHARS
from mai_image_nb.pngmeta import read_record
from tests.unit.crash_writer import key_of, make_generation

# Every Unicode scalar value; lone surrogates (category Cs) are not text (see the test below).
prompts = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=PROMPT_MAX_CHARS
)
HOSTILE_NAMES = [
    "../../x",
    "../../../../etc/passwd",
    "/etc/passwd",
    "CON",
    "nul",
    "COM1",
    "a\x00b",
    "\x00",
    "x" * 300,
    "é" * 300,
    "\u202egnp.exe",
    "abc\u200fdef\u200e",
    "",
    "???***",
    "...",
    "\\\\server\\share",
    "C:\\Windows\\system32",
    "\n\t\r",
]


@pytest.fixture
def b64_client() -> Iterator[mai.Client]:
    with (
        OfflineServer(image_scale=1 / 16, seed=5, response_format="b64_json") as server,
        mai.Client(base_url=server.url, offline=False, history=False, timeout=10) as client,
    ):
        yield client
        assert not server.errors


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    prompt=prompts,
    aspect_ratio=st.sampled_from(ASPECT_RATIOS),
    temperature=st.floats(0, 2),
    sample=st.integers(0, 2**31),
    max_tokens=st.none() | st.integers(1, 2**31),
)
@example(  # the longest prompt allowed, right-to-left overrides between accented letters
    prompt="\u202e\u00e9" * 2000, aspect_ratio="9:16", temperature=2.0, sample=0, max_tokens=None
)
@example(  # control characters, a joined emoji, a combining accent, a byte-order mark
    prompt="\x00\r\n\t \U0001f984\u200d\U0001f30a e\u0301 \ufeff",
    aspect_ratio="1:1",
    temperature=0.0,
    sample=7,
    max_tokens=1,
)
def test_any_prompt_survives_a_call_save_and_read_params(
    b64_client: mai.Client,
    tmp_path: Path,
    prompt: str,
    aspect_ratio: str,
    temperature: float,
    sample: int,
    max_tokens: int | None,
) -> None:
    gen = b64_client.generate(
        prompt,
        aspect_ratio=aspect_ratio,
        temperature=temperature,
        sample=sample,
        max_tokens=max_tokens,
        cache=False,
    )
    path = gen.save(tmp_path / "saved.png")
    params = read_params(path)
    assert params == gen.params.generate_kwargs()
    assert params["prompt"] == prompt
    assert read_record(path)["id"] == gen.id


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("\ud800", id="lone-high-surrogate"),
        pytest.param("a lighthouse \udfff at dusk", id="lone-low-surrogate"),
    ],
)
def test_a_prompt_that_is_not_unicode_text_is_a_validation_error(
    b64_client: mai.Client, prompt: str
) -> None:
    """Not a UnicodeEncodeError from deep inside, and in a batch only its own slot fails."""
    with pytest.raises(errors.ValidationError) as info:
        b64_client.generate(prompt)
    assert info.value.field == "prompt"
    first, second = b64_client.generate_many([prompt, "a lighthouse"], progress=False)
    assert isinstance(first, errors.ValidationError)
    assert isinstance(second, mai.Generation)


# -- export names ------------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, tuple[int, bytes]]:
    """name -> (inode, bytes) of every file: an overwrite changes one or the other."""
    return {p.name: (p.stat().st_ino, p.read_bytes()) for p in folder.iterdir()}


def _check_export(out: Path, gens: list[Generation], before: dict[str, tuple[int, bytes]]) -> None:
    """One export into `out` added exactly its files, each safe, and changed nothing else."""
    after = _files(out)
    assert {name: after[name] for name in before} == before, "an existing file was overwritten"
    added = sorted(set(after) - set(before))
    assert len(added) == len(gens) + 3  # the images, index.json, index.csv and index.html
    for name in added:
        assert name and name not in (".", "..")
        assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
        assert (out / name).resolve().parent == out.resolve()
    (index,) = [n for n in added if n.startswith("index") and n.endswith(".json")]
    records = json.loads((out / index).read_text(encoding="utf-8"))
    assert [r["id"] for r in records] == [g.id for g in gens]
    for record in records:
        assert record["file"] in added
        assert read_record(out / record["file"])["id"] == record["id"]


def _no_strays(root: Path, out: Path) -> None:
    """Nothing was written anywhere under `root` but inside `out`."""
    strays = [p for p in root.rglob("*") if p != out and out not in p.parents]
    assert strays == []


def test_history_export_of_hostile_ids_and_prompts_stays_inside_and_never_overwrites(
    tmp_path: Path,
) -> None:
    home, out = tmp_path / "home" / "history", tmp_path / "out" / "export"
    with mai.History(home) as history:
        for n, gid in enumerate(HOSTILE_NAMES):
            prompt = HOSTILE_NAMES[(n + 5) % len(HOSTILE_NAMES)] or "\u200f"
            gen = make_generation(gid, prompt)
            history.add(gen, cache_key=key_of(gen))
        gens = list(history)
        assert len(gens) == len(HOSTILE_NAMES)
        for _ in range(3):  # the same names three times over: -2, -3, never a clobber
            before = _files(out) if out.exists() else {}
            assert history.export(out) == out
            _check_export(out, gens, before)
    _no_strays(tmp_path / "out", out)
    assert not any(p.name.startswith(".") for p in out.iterdir()), "a temporary file was left"


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(
        st.tuples(
            st.sampled_from(HOSTILE_NAMES) | st.text(max_size=300),
            st.sampled_from(HOSTILE_NAMES) | st.text(max_size=PROMPT_MAX_CHARS),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda item: item[0],
    )
)
def test_any_ids_and_prompts_export_to_safe_new_names(items: list[tuple[str, str]]) -> None:
    gens = [make_generation(gid, prompt) for gid, prompt in items]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = root / "export"
        for _ in range(2):
            before = _files(out) if out.exists() else {}
            export_generations(gens, out)
            _check_export(out, gens, before)
        _no_strays(root, out)
        assert sorted(os.listdir(root)) == ["export"]
