"""Every test asserts something: a test whose body cannot fail is a defect.

Each `test_*` function of tests/**/test_*.py must contain an `assert`, a `pytest.raises` /
`pytest.warns` / `pytest.fail`, a `raise AssertionError`, or call a helper that does: one whose
name starts with `assert_`, `check_`, `expect_` or `verify_`, or a function of the tests (in the
same module, or imported from a `tests.` module) that itself asserts, as `refused(...)` and
`allowed(...)` in the stage tests do. Asserts in a function nested in the test count (a fake
server's handler often holds them): that is lenient, not a proof that they run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
HELPER_PREFIXES = ("assert_", "check_", "expect_", "verify_")
PYTEST_CHECKS = frozenset({"raises", "warns", "fail", "deprecated_call"})

Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class Module:
    name: str  # dotted, e.g. tests.unit.gateway.stage_kit
    path: Path
    tree: ast.Module
    functions: dict[str, Function] = field(default_factory=dict)
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (module, name)
    modules: dict[str, str] = field(default_factory=dict)  # local alias -> module

    @classmethod
    def parse(cls, name: str, path: Path, source: str, known: set[str]) -> Module:
        module = cls(name, path, ast.parse(source, filename=str(path)))
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                module.functions[node.name] = node
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests"):
                for alias in node.names:
                    local = alias.asname or alias.name
                    if f"{node.module}.{alias.name}" in known:
                        module.modules[local] = f"{node.module}.{alias.name}"
                    else:
                        module.imported[local] = (str(node.module), alias.name)
        return module


def _is_pytest_check(func: ast.expr) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr in PYTEST_CHECKS
        and isinstance(func.value, ast.Name)
        and func.value.id == "pytest"
    )


def _raises_assertion_error(node: ast.Raise) -> bool:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return isinstance(exc, ast.Name) and exc.id == "AssertionError"


def _called(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


class Suite:
    """The test modules and helpers, and which of their functions assert (transitively)."""

    def __init__(self, modules: Mapping[str, Module]) -> None:
        self.modules = modules
        self._asserting: dict[tuple[str, str], bool] = {}

    def asserts(self, module: Module, function: Function) -> bool:
        for node in ast.walk(function):
            if isinstance(node, ast.Assert):
                return True
            if isinstance(node, ast.Raise) and _raises_assertion_error(node):
                return True
            if isinstance(node, ast.Call) and self._asserting_call(module, node.func):
                return True
        return False

    def _asserting_call(self, module: Module, func: ast.expr) -> bool:
        if _is_pytest_check(func) or _called(func).startswith(HELPER_PREFIXES):
            return True
        if isinstance(func, ast.Name):
            return self._helper_asserts(module, func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            other = self.modules.get(module.modules.get(func.value.id, ""))
            return other is not None and self._helper_asserts(other, func.attr)
        return False

    def _helper_asserts(self, module: Module, name: str) -> bool:
        if name in module.imported:
            source, original = module.imported[name]
            other = self.modules.get(source)
            return other is not None and self._helper_asserts(other, original)
        function = module.functions.get(name)
        if function is None:
            return False
        key = (module.name, name)
        if key not in self._asserting:
            self._asserting[key] = False  # a recursive helper does not assert by recursing
            self._asserting[key] = self.asserts(module, function)
        return self._asserting[key]

    def unasserting(self) -> Iterator[str]:
        """`path:line name` of each test that asserts nothing."""
        for module in self.modules.values():
            if not module.path.name.startswith("test_"):
                continue
            for test in _tests(module.tree):
                if not self.asserts(module, test):
                    yield f"{module.path}:{test.lineno} {test.name}"


def _tests(tree: ast.Module) -> Iterator[Function]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name.startswith("test_"):
                yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for inner in node.body:
                if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    inner.name.startswith("test_")
                ):
                    yield inner


def suite(sources: Mapping[Path, str], root: Path = ROOT) -> Suite:
    names = {".".join(path.relative_to(root).with_suffix("").parts): path for path in sources}
    known = set(names)
    modules = {
        name: Module.parse(name, path.relative_to(root), sources[path], known)
        for name, path in names.items()
    }
    return Suite(modules)


def test_every_test_asserts_something() -> None:
    sources = {
        path: path.read_text(encoding="utf-8")
        for path in sorted(TESTS.rglob("*.py"))
        if ".hypothesis" not in path.parts
    }
    test_files = [p for p in sources if p.name.startswith("test_")]
    assert len(test_files) > 50, "the suite was not found: nothing would be checked"
    found = list(suite(sources).unasserting())
    assert not found, "tests that assert nothing (give each a real assertion):\n" + "\n".join(found)


# -- the check itself ---------------------------------------------------------------------------

HELPERS = """
import pytest

def refused(x):
    with pytest.raises(ValueError):
        x()

def quiet(x):
    return x
"""

TESTS_OF_HELPERS = """
import pytest
from tests.kit import refused, quiet as calm
from tests import kit

def shown(x):
    return refused(x)

def test_empty():
    pass

def test_calls_a_helper_that_asserts_nothing():
    calm(1)
    kit.quiet(2)

def test_assert():
    assert 1

async def test_raises():
    with pytest.raises(KeyError):
        {}["x"]

def test_fail():
    if 0:
        pytest.fail("no")

def test_raise_assertion_error():
    raise AssertionError("x")

def test_imported_helper():
    refused(int)

def test_module_helper():
    kit.refused(int)

def test_transitive_local_helper():
    shown(int)

def test_prefixed_method(harness):
    harness.check_exchanges([], [])

class TestGroup:
    def test_in_a_class(self):
        pass

def helper_not_a_test():
    pass
"""


def test_the_check_names_each_test_that_asserts_nothing() -> None:
    root = Path("/lab")
    sources = {root / "tests/kit.py": HELPERS, root / "tests/test_x.py": TESTS_OF_HELPERS}
    found = list(suite(sources, root).unasserting())
    assert found == [
        "tests/test_x.py:9 test_empty",
        "tests/test_x.py:12 test_calls_a_helper_that_asserts_nothing",
        "tests/test_x.py:43 test_in_a_class",
    ]
