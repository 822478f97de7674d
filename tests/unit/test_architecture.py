"""The package's shape, read from its source: private members stay home, no cycles, small modules.

An AST walk over every module of `mai_image_nb` (nothing is imported), so these hold for code
no test happens to run.

Private members: `<receiver>._name` (not a dunder), or `getattr(<receiver>, "_name")` and
its kin, is allowed only where `<receiver>` is one of the module's own objects: `self`, `cls`,
`super()`, a local made from them in the same function (`clone = copy.copy(self)`,
`type(self)(...)`, `cls(...)`), or any receiver when `_name` is defined in this module and in
no other (as `other._port` inside a class's `__eq__`). Anything else reaches a member another
module owns (`client._spend`, `server._files`) or a third-party private (`sys._getframe`):
only the allow-list below, each entry with its reason, may do that. Nor may
`from .other import _name` borrow one (private modules such as `_files` are the package's own).

Imports: an edge for every import of a package module at any depth (function-level imports
too) except under `if TYPE_CHECKING:`; `from . import x` points at module `x` when it is one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import mai_image_nb

PACKAGE_DIR = Path(mai_image_nb.__file__).resolve().parent
MAX_MODULE_LINES = 400
SELF_NAMES = frozenset({"self", "cls"})
COPIES_OF_SELF = frozenset({"copy.copy", "copy.deepcopy", "copy.replace", "dataclasses.replace"})

# (module, receiver as written, attribute) -> why this foreign private is fine.
ALLOWED_FOREIGN_PRIVATES: dict[tuple[str, str, str], str] = {
    ("mai_image_nb._userwarn", "sys", "_current_frames"): (
        "documented in the sys module; the one way a worker thread can read the main thread's "
        "stack, to point a warning at the user's line"
    ),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_package(root: Path) -> dict[str, tuple[ast.Module, bool]]:
    """Module name -> (its AST, whether it is a package's `__init__`)."""
    return {
        module_name(path, root): (
            ast.parse(path.read_text(encoding="utf-8"), filename=str(path)),
            path.name == "__init__.py",
        )
        for path in sorted(root.rglob("*.py"))
    }


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def defined_privates(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, variables, `x._name = ...`, aliases."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
    return {name for name in names if is_private(name)}


def is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in SELF_NAMES


def made_from_self(value: ast.expr) -> bool:
    """`copy.copy(self)`, `type(self)(...)`, `self.__class__(...)` or `cls(...)`."""
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    if is_self(func) or (isinstance(func, ast.Attribute) and is_self(func.value)):
        return True  # cls(...), self.__class__(...)
    if isinstance(func, ast.Call) and ast.unparse(func.func) == "type":
        return bool(func.args) and is_self(func.args[0])
    return ast.unparse(func) in COPIES_OF_SELF and bool(value.args) and is_self(value.args[0])


def own_locals(tree: ast.Module) -> dict[int, set[str]]:
    """For each function (by id), the local names bound to objects made from self or cls."""
    found: dict[int, set[str]] = {}
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[id(func)] = {
                target.id
                for node in ast.walk(func)
                if isinstance(node, ast.Assign) and made_from_self(node.value)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
    return found


ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def private_attribute(node: ast.AST) -> tuple[ast.expr, str] | None:
    """(receiver, name) of `x._name` or `getattr(x, "_name", ...)` (and set/has/del)."""
    if isinstance(node, ast.Attribute) and is_private(node.attr):
        return node.value, node.attr
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ATTRIBUTE_FUNCTIONS
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and is_private(node.args[1].value)
    ):
        return node.args[0], node.args[1].value
    return None


def foreign_private_accesses(
    package: dict[str, tuple[ast.Module, bool]],
    module: str,
    defined: dict[str, set[str]] | None = None,
) -> list[str]:
    """`module:line: receiver._name` for each private member `module` reaches in another's.

    `defined` (module -> the private names it defines) is computed when not given.
    """
    if defined is None:
        defined = {name: defined_privates(tree) for name, (tree, _) in package.items()}
    tree = package[module][0]
    locals_by_function = own_locals(tree)
    found: list[str] = []

    def visit(node: ast.AST, own: frozenset[str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            own = own | locals_by_function[id(node)]
        attribute = private_attribute(node)
        if attribute is not None:
            receiver, attr = attribute
            owners = {name for name, names in defined.items() if attr in names}
            mine = (
                is_self(receiver)
                or (isinstance(receiver, ast.Name) and receiver.id in own)
                or (isinstance(receiver, ast.Call) and ast.unparse(receiver.func) == "super")
                or owners == {module}
            )
            key = (module, ast.unparse(receiver), attr)
            if not mine and key not in ALLOWED_FOREIGN_PRIVATES:
                found.append(f"{module}:{getattr(node, 'lineno', 0)}: {key[1]}.{key[2]}")
        for child in ast.iter_child_nodes(node):
            visit(child, own)

    visit(tree, frozenset())
    for node in ast.walk(tree):  # `from .other import _helper` borrows a private name too
        if isinstance(node, ast.ImportFrom) and (node.level or node.module in package):
            base = import_base(module, node, package[module][1])
            for alias in node.names:
                if is_private(alias.name) and f"{base}.{alias.name}" not in package:
                    found.append(f"{module}:{node.lineno}: from {base} import {alias.name}")
    return found


def type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    return skipped


def import_base(module: str, node: ast.ImportFrom, is_init: bool) -> str:
    """The absolute module `from ... import` reads from, inside `module`."""
    base = node.module or ""
    if node.level:
        anchor = module if is_init else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            anchor = anchor.rpartition(".")[0]
        base = f"{anchor}.{base}" if base else anchor
    return base


def import_graph(package: dict[str, tuple[ast.Module, bool]]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere but under `if TYPE_CHECKING:`)."""
    graph: dict[str, set[str]] = {}
    for module, (tree, is_init) in package.items():
        skipped = type_checking_only(tree)
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = import_base(module, node, is_init)
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    found.add(child if child in package else base)
        graph[module] = {name for name in found if name in package and name != module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def third_party_imports(tree: ast.Module) -> set[str]:
    """Top-level names of the non-package modules imported anywhere, TYPE_CHECKING aside."""
    skipped = type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found - {"mai_image_nb"}


PACKAGE = read_package(PACKAGE_DIR)
DEFINED = {name: defined_privates(tree) for name, (tree, _) in PACKAGE.items()}
LINES = {module_name(p, PACKAGE_DIR): p.read_text(encoding="utf-8").count("\n")
         for p in PACKAGE_DIR.rglob("*.py")}  # fmt: skip


def test_the_walk_sees_the_whole_package() -> None:
    assert {"mai_image_nb", "mai_image_nb.client", "mai_image_nb.studio.panel"} <= set(PACKAGE)
    graph = import_graph(PACKAGE)
    assert "mai_image_nb.offline.schema" in graph["mai_image_nb.offline.handler"]
    assert "mai_image_nb.params" in graph["mai_image_nb.client"]


@pytest.mark.parametrize("module", sorted(PACKAGE))
def test_no_module_touches_another_modules_private_members(module: str) -> None:
    assert foreign_private_accesses(PACKAGE, module, DEFINED) == []


def test_no_import_cycles() -> None:
    assert import_cycles(import_graph(PACKAGE)) == []


@pytest.mark.parametrize("module", sorted(PACKAGE))
def test_modules_stay_small(module: str) -> None:
    assert LINES[module] <= MAX_MODULE_LINES, f"{module}: {LINES[module]} lines"


# The layers of ARCHITECTURE.md, top to bottom: a module may import its own layer's and
# lower layers' modules, never a higher layer's.
LAYERS = {
    "studio": 0, "classroom": 0,
    "client": 1, "batch": 1, "settings": 1, "answers": 1, "http_calls": 1, "listeners": 1,
    "store": 1,
    "history": 2, "export": 2, "comparison": 2, "sheet": 2, "analysis": 2, "report": 2,
    "offline": 2,
    "transport": 3, "generation": 3, "usage": 3, "pngmeta": 3, "imagemeta": 3, "display": 3,
    "previews": 3, "labels": 3, "retry": 3, "spend": 3, "params": 3, "_sqlite": 3, "_files": 3,
    "_records": 3, "_reconcile": 3, "_opening": 3, "_userwarn": 3, "_version": 3, "_serving": 3,
    "errors": 4,
}  # fmt: skip
# Third-party imports allowed only in some places: name -> module prefixes that may import it.
CONFINED_IMPORTS = {
    "ipywidgets": ("mai_image_nb.studio", "mai_image_nb.classroom.dashboard"),
    "IPython": ("mai_image_nb.studio", "mai_image_nb.display"),
    "tqdm": ("mai_image_nb.batch",),
    "requests": (
        "mai_image_nb.transport",
        "mai_image_nb.classroom.upstream",
        "mai_image_nb.classroom.dashboard",
    ),
}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None  # the package itself: none


def test_every_module_has_a_layer() -> None:
    assert [m for m in PACKAGE if m != "mai_image_nb" and layer_of(m) is None] == []


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph(PACKAGE).items()
        for target in targets
        if (mine := layer_of(module)) is not None
        and (theirs := layer_of(target)) is not None
        and theirs < mine
    ]
    assert upward == []


def test_confined_third_party_imports() -> None:
    misplaced = [
        f"{module} imports {name}"
        for module, (tree, _) in PACKAGE.items()
        for name in third_party_imports(tree)
        if name in CONFINED_IMPORTS and not module.startswith(CONFINED_IMPORTS[name])
    ]
    assert misplaced == []


def test_architecture_md_names_every_module() -> None:
    text = (PACKAGE_DIR.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 120, "ARCHITECTURE.md is a map: keep it under 120 lines"
    text = text.split("\n## Modules\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+(?:/[a-z_]+)?\.py)`", text))
    modules = {p.relative_to(PACKAGE_DIR).as_posix() for p in PACKAGE_DIR.rglob("*.py")}
    assert modules - named == set(), "modules ARCHITECTURE.md does not describe"
    assert named - modules == set(), "ARCHITECTURE.md names modules that do not exist"


def test_every_allowed_foreign_private_is_still_used() -> None:
    used = {
        (module, ast.unparse(node.value), node.attr)
        for module, (tree, _) in PACKAGE.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
    }
    assert set(ALLOWED_FOREIGN_PRIVATES) <= used


# -- the checks themselves catch what they are for ------------------------------------------


def fake_package(**sources: str) -> dict[str, tuple[ast.Module, bool]]:
    """`pkg__a="..."` is module pkg.a; `pkg__init` is package pkg's `__init__`."""
    return {
        name.removesuffix("__init").replace("__", "."): (ast.parse(src), name.endswith("__init"))
        for name, src in sources.items()
    }


def test_foreign_privates_are_caught_and_own_ones_are_not() -> None:
    package = fake_package(
        pkg__server="class S:\n    def __init__(self):\n        self._files = {}\n"
        "    def __eq__(self, other):\n        return self._files == other._files\n"
        "    def clone(self):\n        twin = copy.copy(self)\n        twin._lock = 1\n",
        pkg__handler="def serve(owner, sys):\n    owner._files.clear()\n"
        "    super()._setup()\n    getattr(owner, '_files')\n    return sys._getframe(0)\n",
        pkg__other="class O:\n    def __init__(self):\n        self._lock = 0\n",
        pkg__user="from .server import S, _helper\nfrom . import _private_module\n",
        pkg___private_module="",
    )
    assert foreign_private_accesses(package, "pkg.server") == []
    assert foreign_private_accesses(package, "pkg.handler") == [
        "pkg.handler:2: owner._files",
        "pkg.handler:4: owner._files",
        "pkg.handler:5: sys._getframe",
    ]
    assert foreign_private_accesses(package, "pkg.user") == [
        "pkg.user:1: from pkg.server import _helper"
    ]


def test_cycles_are_caught_but_type_checking_imports_are_not() -> None:
    package = fake_package(
        pkg__init="",
        pkg__a="from . import b\n",
        pkg__b="def f():\n    from .c import x\n",
        pkg__c="from typing import TYPE_CHECKING\nfrom pkg import a\n",
        pkg__d="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n",
    )
    graph = import_graph(package)
    assert graph["pkg.d"] == set()
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    del package["pkg.c"]
    assert import_cycles(import_graph(package)) == []
