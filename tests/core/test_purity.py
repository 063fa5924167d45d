"""core/ is pure (STYLE.md principle 1): no I/O, clock, environment or database, by reading its source.

Every module under ``typoguard/core`` is parsed, not imported, so a forbidden import is found even on a code
path no test runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import typoguard.core

CORE = Path(typoguard.core.__file__).resolve().parent
MODULES = sorted(CORE.rglob("*.py"))

FORBIDDEN_MODULES = frozenset(
    {
        "asyncio",
        "socket",
        "socketserver",
        "ssl",
        "selectors",
        "select",
        "os",
        "pathlib",
        "shutil",
        "tempfile",
        "glob",
        "fileinput",
        "io",
        "sqlite3",
        "dbm",
        "shelve",
        "pickle",
        "time",
        "datetime",
        "zoneinfo",
        "calendar",
        "random",
        "secrets",
        "uuid",
        "subprocess",
        "multiprocessing",
        "threading",
        "concurrent",
        "signal",
        "logging",
        "http",
        "urllib",
        "smtplib",
        "email",
        "importlib",
        "sys",
        "builtins",
        "ctypes",
        "mmap",
        "resource",
        "platform",
        "getpass",
        "pwd",
        "grp",
        "tomllib",
        "psycopg",
        "psycopg2",
        "aiosmtpd",
        "prometheus_client",
        "rich",
        "click",
        "orjson",
        "publicsuffixlist",
        "confusables",
    }
)
# Layers above core: core must not reach up into them (they do the I/O).
FORBIDDEN_TYPOGUARD = (
    "typoguard.config",
    "typoguard.guard",
    "typoguard.resources",
    "typoguard.cli.app",
    "typoguard.adapters",
    "typoguard.protocols",
    "typoguard.store",
)
FORBIDDEN_BUILTINS = frozenset(
    {"open", "input", "print", "exec", "eval", "compile", "__import__", "breakpoint"}
)
FORBIDDEN_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "getenv", "urlopen"})


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            # "from typoguard import config" imports the module typoguard.config
            out.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return out


def _problems(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename)
    problems = []
    for line, module in _imports(tree):
        top = module.split(".", 1)[0]
        if top in FORBIDDEN_MODULES:
            problems.append(f"line {line}: imports {module}")
        if module.startswith(FORBIDDEN_TYPOGUARD):
            problems.append(f"line {line}: imports {module}, a layer above core")
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
        "import os",
        "import os.path",
        "from pathlib import Path",
        "import asyncio",
        "from time import monotonic",
        "import datetime as dt",
        "def f():\n    import sqlite3",  # lazily, inside a function
        "from io import StringIO",
        "import socket",
        "data = open('x').read()",
        "from typoguard.resources import suffix_rules",
        "from typoguard import config",
        "import typoguard.guard",
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
