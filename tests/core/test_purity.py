"""core/ is pure (STYLE.md principle 1): what import-linter cannot see, by reading the source.

Which modules core may import is import-linter's job (the ``core-pure`` and ``layers`` contracts in
pyproject.toml, run by tests/test_layers.py). This test finds the rest: I/O through builtins (``open``,
``print``), file methods, and the environment.

Every module under ``typoguard/core`` is parsed, not imported, so a forbidden call is found even on a code
path no test runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import typoguard.core

CORE = Path(typoguard.core.__file__).resolve().parent
MODULES = sorted(CORE.rglob("*.py"))

FORBIDDEN_BUILTINS = frozenset(
    {"open", "input", "print", "exec", "eval", "compile", "__import__", "breakpoint"}
)
FORBIDDEN_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "getenv", "urlopen"})


def _problems(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Name) and fn.id in FORBIDDEN_BUILTINS:  # re.compile is fine, compile() not
                problems.append(f"line {node.lineno}: calls {fn.id}()")
            if isinstance(fn, ast.Attribute) and fn.attr in FORBIDDEN_METHODS:
                problems.append(f"line {node.lineno}: calls .{fn.attr}()")
        if isinstance(node, ast.Attribute) and node.attr == "environ":
            problems.append(f"line {node.lineno}: reads the environment")
    return problems


def test_core_has_modules() -> None:
    names = {p.relative_to(CORE).as_posix() for p in MODULES}
    assert {"names.py", "index.py", "policy.py", "detector.py", "models/omission.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_module_is_pure(path: Path) -> None:
    assert _problems(path.read_text("utf-8"), str(path)) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "data = open('x').read()",
        "x = environ_like.environ['HOME']",
        "text = p.read_text()",
    ],
)
def test_the_checker_catches_impurity(snippet: str) -> None:
    # A purity test that cannot fail would be a defect: prove it sees each kind of violation.
    assert _problems(snippet, "<snippet>")


def test_the_checker_accepts_pure_code() -> None:
    ok = "import re\nfrom typoguard.errors import InvalidAddress\nWORD = re.compile('x')\n"
    assert _problems(ok, "<ok>") == []
