"""The public surface, exactly: `__all__`, the names and signatures API.md fixes, a light import.

As httpx's tests/test_exported_members.py: `__all__` is compared whole, so a new or lost name
is a decision someone makes here, not an accident.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import mai_image_nb as mai

EXPORTED = [
    "ASPECT_RATIOS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BudgetExceededError",
    "CancelledError",
    "Cell",
    "Client",
    "Comparison",
    "Generation",
    "History",
    "MaiImageError",
    "RateLimitError",
    "ResponseError",
    "Studio",
    "Usage",
    "ValidationError",
    "__version__",
    "errors",
    "read_params",
]
API_MD = Path(__file__).resolve().parents[3] / "shared" / "design" / "API.md"


def test_all_is_exactly_the_public_surface() -> None:
    assert mai.__all__ == EXPORTED
    assert set(EXPORTED) <= set(dir(mai))  # the lazy names too


@pytest.mark.parametrize("name", [n for n in EXPORTED if n != "Studio"])
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(mai, name) is not None


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = mai.no_such_name


def test_error_tree() -> None:
    assert issubclass(mai.ValidationError, ValueError)
    assert issubclass(mai.APITimeoutError, mai.APIConnectionError)
    assert issubclass(mai.RateLimitError, mai.APIStatusError)
    assert issubclass(mai.AuthenticationError, mai.APIStatusError)
    for name in EXPORTED:
        value = getattr(mai, name) if name != "Studio" else None
        if isinstance(value, type) and name.endswith("Error"):
            assert issubclass(value, mai.MaiImageError), name
            assert getattr(mai.errors, name) is value


def test_import_loads_no_widgets() -> None:
    code = (
        "import sys, mai_image_nb;"
        "bad = [m for m in ('ipywidgets', 'IPython', 'tqdm', 'pandas') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def parameters(func: object) -> dict[str, tuple[inspect._ParameterKind, object]]:
    return {
        name: (p.kind, p.default)
        for name, p in inspect.signature(func).parameters.items()  # type: ignore[arg-type]
    }


KW = inspect.Parameter.KEYWORD_ONLY
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
EMPTY = inspect.Parameter.empty


def test_client_signature() -> None:
    assert parameters(mai.Client) == {
        "api_key": (POS, None),
        "base_url": (KW, None),
        "model": (KW, "microsoft/mai-image-2.5"),
        "offline": (KW, None),
        "history": (KW, None),
        "timeout": (KW, 120.0),
        "max_retries": (KW, 3),
        "max_workers": (KW, 4),
        "budget_usd": (KW, None),
    }


def test_generate_signature_takes_cancel() -> None:
    assert parameters(mai.Client.generate) == {
        "self": (POS, EMPTY),
        "prompt": (POS, EMPTY),
        "aspect_ratio": (KW, "1:1"),
        "temperature": (KW, 1.0),
        "max_tokens": (KW, None),
        "max_completion_tokens": (KW, None),
        "sample": (KW, 0),
        "cache": (KW, True),
        "cancel": (KW, None),
    }


def test_compare_signature() -> None:
    assert parameters(mai.Client.compare) == {
        "self": (POS, EMPTY),
        "prompt": (POS, EMPTY),
        "aspect_ratios": (KW, ("1:1", "16:9", "9:16")),
        "temperatures": (KW, (0.2, 1.0, 1.8)),
        "repeats": (KW, 1),
        "cache": (KW, True),
        "progress": (KW, True),
        "cancel": (KW, None),
        "on_cell": (KW, None),
    }


def test_the_seams_are_public_methods() -> None:
    assert parameters(mai.Client.check_budget) == {"self": (POS, EMPTY), "n": (POS, 1)}
    assert parameters(mai.Client.estimate) == {"self": (POS, EMPTY), "n": (POS, 1)}
    assert list(parameters(mai.Client.on_generation)) == ["self", "listener"]
    generate_params = parameters(mai.Client.generate_params)
    assert generate_params["cache"] == (KW, True)
    assert generate_params["cancel"] == (KW, None)
    budget = inspect.getattr_static(mai.Client, "budget_usd")
    assert isinstance(budget, property) and budget.fset is not None
    spent = inspect.getattr_static(mai.Client, "spent_usd")
    assert isinstance(spent, property) and spent.fset is None


def test_the_seams_behave_as_documented(tmp_path: Path) -> None:
    """check_budget asks, budget_usd is settable and validated, on_generation unsubscribes."""
    with mai.Client(offline=True, history=False, budget_usd=0.0) as client:
        with pytest.raises(mai.BudgetExceededError):
            client.check_budget(1)
        client.budget_usd = None
        client.check_budget(1000)
        with pytest.raises(mai.ValidationError, match="budget_usd"):
            client.budget_usd = -1.0
        seen: list[mai.Generation] = []
        unsubscribe = client.on_generation(seen.append)
        first = client.generate("a red kite", temperature=0)
        unsubscribe()
        client.generate("a red kite", temperature=0, sample=1)
        assert seen == [first]
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(mai.CancelledError):
            client.generate("a blue kite", cancel=cancel)


@pytest.mark.skipif(not API_MD.exists(), reason="../shared/design/API.md is not beside")
def test_api_md_names_are_exported_and_importable() -> None:
    """Every name API.md imports, and every class of its error table, exists as documented."""
    text = API_MD.read_text(encoding="utf-8")
    imported = re.search(r"from mai_image_nb import ([A-Za-z_, ]+)\n", text)
    assert imported is not None
    names = {name.strip() for name in imported.group(1).split(",")}
    error_classes = set(re.findall(r"^\| `([A-Za-z]+)(?:\(|`)", text, flags=re.MULTILINE))
    assert {"MaiImageError", "CancelledError"} <= error_classes
    for name in names | error_classes:
        assert name in mai.__all__, name
        assert getattr(mai, name) is not None
    for name in error_classes:
        assert getattr(mai.errors, name) is getattr(mai, name)


@pytest.mark.skipif(not API_MD.exists(), reason="../shared/design/API.md is not beside")
def test_api_md_names_each_client_method() -> None:
    text = API_MD.read_text(encoding="utf-8")
    documented = set(re.findall(r"`client\.([a-z_]+)", text))
    public = {name for name in dir(mai.Client) if not name.startswith("_")} | {"mode"}
    # Beyond API.md, each a seam named in ARCHITECTURE.md: generate_params and cached for
    # batch and the Studio; get_service_json for the Studio header's class budget (a gateway).
    assert documented - public == set()
    assert public - documented <= {"generate_params", "cached", "get_service_json"}
