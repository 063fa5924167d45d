"""``typoguard config check``: every problem of a config file at once, each with where it is (``file:line``).

``load_config`` stops at the first mistake (a service must not start on a half-read config); an admin who
edits the file wants the whole list before ``systemctl reload``. This module reads the file as
``load_config`` does, with the same rules (``typoguard.config``: the unknown keys, the types and
``problems``), but keeps going, and finds the line of each key in the file text (tomllib gives line numbers
only for syntax errors). It also checks what needs the file system but nothing above the config layer:
the protected domains (and the lines of their files), paths, addresses that collide. The checks that need
the store, the held-mail queue or a role's own code are in ``typoguard.cli.config``.

Nothing here changes anything on disk: directories that do not exist yet are checked by whether they could
be created, files are opened for reading only.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from typoguard import resources
from typoguard.config import (
    Config,
    EnvSetting,
    HostPort,
    Problem,
    apply_collecting,
    env_settings,
    problems,
    protect_sources,
)
from typoguard.core.models import select_models
from typoguard.core.names import normalise_domain
from typoguard.errors import ConfigError, InvalidAddress

# --------------------------------------------------------------------------- where a key is
_BARE: Final = r"[A-Za-z0-9_\-]+"
_PART: Final = rf"""(?:{_BARE}|"[^"\n]*"|'[^'\n]*')"""
_DOTTED: Final = rf"{_PART}(?:\s*\.\s*{_PART})*"
_TABLE_LINE: Final = re.compile(rf"\s*\[\s*({_DOTTED})\s*\]\s*(?:#.*)?$")
_ARRAY_TABLE_LINE: Final = re.compile(rf"\s*\[\[\s*({_DOTTED})\s*\]\]\s*(?:#.*)?$")
_KEY_LINE: Final = re.compile(rf"\s*({_DOTTED})\s*=")
_PARTS: Final = re.compile(_PART)


def _names(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _PARTS.findall(dotted))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line (from 1) where each table and key of a TOML document is first named.

    ``[store]`` gives ``("store",)``, ``data_dir = ...`` under it ``("store", "data_dir")``; a dotted key
    (``policy.mode = ...``) and a sub-table (``[protect.weights]``) name their tables too. The tables of an
    array (``[[alert]]``) are numbered from 1 as ``config`` numbers them in its messages: the second
    ``[[alert]]`` header gives ``("alert", "#2")`` and its ``url = ...`` ``("alert", "#2", "url")`` (and
    the first header ``("alert",)``). Lines inside a multi-line string are skipped; comments never match (a
    key line starts with the key).
    """
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    arrays: dict[tuple[str, ...], int] = {}  # tables seen so far of each array
    open_quote = ""
    for n, line in enumerate(text.splitlines(), 1):
        if open_quote:
            if line.count(open_quote) % 2:
                open_quote = ""
            continue
        if m := _ARRAY_TABLE_LINE.match(line):
            name = _names(m[1])
            arrays[name] = arrays.get(name, 0) + 1
            table = (*name, f"#{arrays[name]}")
            for i in range(1, len(table) + 1):
                found.setdefault(table[:i], n)
            continue
        if m := _TABLE_LINE.match(line):
            table = _names(m[1])
            for i in range(1, len(table) + 1):
                found.setdefault(table[:i], n)
            continue
        if m := _KEY_LINE.match(line):
            path = table + _names(m[1])
            for i in range(len(table) + 1, len(path) + 1):
                found.setdefault(path[:i], n)
            rest = line[m.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2:
                    open_quote = quote
    return found


# --------------------------------------------------------------------------- a located problem
@dataclass(frozen=True, slots=True)
class Located:
    """A problem and where it is: ``file:line``, ``file``, ``environment NAME`` or ``defaults``."""

    where: str
    message: str
    line: int = 0  # for sorting; 0 when there is none
    section: str = ""  # the section it is about ("" for the file as a whole)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


_NO_LINE: Final = 1 << 29  # sorts after every line of a file
_LAST: Final = 1 << 30  # the environment: after the file

_NAMED: Final = re.compile(r"\[([a-z]+)\]\s*([a-z_/]+)?")
_TOML_AT: Final = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


@dataclass
class Checked:
    """A config file read for checking: its text, what it sets, the config it makes, its problems."""

    path: Path | None
    text: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    env: list[EnvSetting] = field(default_factory=list)
    config: Config = field(default_factory=Config)
    problems: list[Located] = field(default_factory=list)
    readable: bool = True  # False: not UTF-8 or not TOML; nothing in it was checked
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "defaults"

    def env_for(self, section: str, keys: Iterable[str]) -> EnvSetting | None:
        """The variable that sets one of ``keys`` (the last one read wins, as in ``load_config``)."""
        wanted = set(keys)
        hits = [e for e in self.env if e.section == section and e.key in wanted]
        return hits[-1] if hits else None

    def file_line(self, section: str, keys: Iterable[str] = (), item: int = 0) -> int | None:
        """The line of the first of ``keys`` in the file, else of the ``[section]`` header; with ``item``,
        in that table of the array ``[[section]]`` (else its header)."""
        table: tuple[str, ...] = (section, f"#{item}") if item else (section,)
        for key in keys:
            if (*table, key) in self.lines:
                return self.lines[(*table, key)]
        return self.lines.get(table, self.lines.get((section,)))

    def in_file(self, section: str, keys: Iterable[str] = (), item: int = 0) -> Located:
        """Where ``[section] keys`` (``item``: of that ``[[section]]`` table) are in the file, as a
        ``Located`` without a message."""
        line = self.file_line(section, keys, item)
        if line is None:
            return Located(self.name, "")
        return Located(f"{self.name}:{line}", "", line)

    def add(self, problem: Problem, *, origin: str = "") -> None:
        """Record ``problem`` where it was set: in the file (``origin="file"``), in the environment
        (``origin="env"``), or (a value problem) wherever its keys were set last."""
        keys = problem.keys
        if origin == "env" and not keys:  # an unknown section: any of its variables
            keys = tuple(e.key for e in self.env if e.section == problem.section)
        setting = None if origin == "file" else self.env_for(problem.section, keys)
        if setting is not None:
            where = f"environment {setting.name}"
            self.problems.append(Located(where, problem.message, _LAST, problem.section))
        else:
            self.add_at(self.in_file(problem.section, keys, problem.item), problem.message, problem.section)

    def add_at(self, at: Located, message: str, section: str = "") -> None:
        self.problems.append(Located(at.where, message, at.line, section))

    def add_error(self, message: str) -> None:
        """A message from the code that builds a part of typoguard (a ``ConfigError``): they start with the
        section and key they are about (``[relay] tls_cert/tls_key: ...``), which give the line."""
        m = _NAMED.match(message)
        if m is None:
            self.add_at(Located(self.name, ""), message)
        else:
            self.add(Problem(m[1], tuple(k for k in re.split(r"[/,]", m[2] or "") if k), message))

    def has_problems(self, *sections: str) -> bool:
        """Whether a problem was found (in one of ``sections``, if given)."""
        return any(not sections or p.section in sections for p in self.problems)

    def sorted_problems(self) -> list[Located]:
        """File order (a problem without a line after those with one, the environment last)."""
        return sorted(self.problems, key=lambda p: p.line or _NO_LINE)

    def sources(self) -> dict[tuple[str, str], str]:
        """Where each key set by the file or environment comes from: ``file:LINE`` or ``env NAME``."""
        out: dict[tuple[str, str], str] = {}
        for section, values in self.data.items():
            if isinstance(values, Mapping):
                for key in values:
                    line = self.lines.get((section, key))
                    out[section, key] = f"file:{line}" if line else "file"
        for e in self.env:
            out[e.section, e.key] = f"env {e.name}"
        return out


def read(path: Path | None, environ: Mapping[str, str] | None = None) -> Checked:
    """``path`` read as ``load_config`` reads it, every problem recorded (none raised).

    Raises ``ConfigError`` only when the file cannot be read at all (missing, no permission): there is
    nothing to check then.
    """
    checked = Checked(path, env=env_settings(os.environ if environ is None else environ))
    config = Config()
    if path is not None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
        _parse(checked, raw)
        if checked.readable:
            config, found = apply_collecting(config, checked.data, str(path))
            for problem in found:
                checked.add(problem, origin="file")
        config = replace(config, source=str(path), base_dir=str(path.parent))
    overrides: dict[str, dict[str, Any]] = {}
    for e in checked.env:
        overrides.setdefault(e.section, {})[e.key] = e.value
    config, env_found = apply_collecting(config, overrides, "environment")
    for problem in env_found:
        checked.add(problem, origin="env")
    checked.config = config
    if checked.readable:
        for problem in problems(config):
            checked.add(problem)
    return checked


def _parse(checked: Checked, raw: bytes) -> None:
    name = checked.name
    try:
        checked.text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        checked.readable = False
        checked.add_at(Located(f"{name}:{line}", "", line), f"not UTF-8 (byte {exc.start + 1})")
        return
    try:
        checked.data = tomllib.loads(checked.text)
    except tomllib.TOMLDecodeError as exc:
        checked.readable = False
        message = str(exc)
        m = _TOML_AT.search(message)
        if m:
            line, where = int(m[1]), f"{name}:{m[1]}:{m[2]}"
            message = message[: m.start()]
        else:  # "(at end of document)"
            line = checked.text.count("\n") + 1
            where = f"{name}:{line}"
            message = message.replace(" (at end of document)", " at the end of the file")
        checked.add_at(Located(where, "", line), f"not valid TOML: {message}")
        return
    checked.lines = key_lines(checked.text)


# --------------------------------------------------------------------------- what is protected
def check_protect(checked: Checked) -> None:
    """``[protect]``: every domain valid (also in its files, with their lines), files readable, trusted
    names and weights valid, known models and layouts, no public suffix, and something to protect."""
    config = checked.config
    pc = config.protect
    protected: set[str] = set()
    suffixes = resources.suffix_rules()
    for name, at in [(d, checked.in_file("protect", ("domains",))) for d in pc.domains] + list(
        _file_domains(checked)
    ):
        try:
            domain = normalise_domain(name.strip())
        except InvalidAddress as exc:
            checked.add_at(at, f"[protect] domains: {exc}", "protect")
            continue
        if suffixes.is_known(domain.ascii):
            message = f"[protect] domains: {domain.ascii} is a public suffix, not a mail domain"
            checked.add_at(at, message, "protect")
        protected.add(domain.ascii)
    _each(checked, "trusted", pc.trusted, lambda name: normalise_domain(name.strip()))
    for name in pc.weights:
        try:
            if normalise_domain(name).ascii not in protected:
                message = f"[protect] weights: {name} is not a protected domain (a typo?)"
                checked.add(Problem("protect", ("weights",), message))
        except InvalidAddress as exc:
            checked.add(Problem("protect", ("weights",), f"[protect] weights: {exc}"))
    _each(checked, "models", pc.models or (), lambda name: select_models((name,)))
    _each(checked, "layouts", pc.layouts, lambda name: resources.model_context((name,)))
    if not protected and not checked.has_problems("protect"):
        refused = "typoguard serve, relay and milter refuse to start"
        message = f"nothing to protect: {protect_sources(config)}; {refused}"
        if config.sink.domains:
            return  # a sink-only host: the sink answers for its own [sink] domains
        checked.add(Problem("protect", ("domains", "files"), message))


def _each(checked: Checked, key: str, items: Iterable[str], check: Any) -> None:
    for item in items:
        try:
            check(item)
        except (InvalidAddress, ConfigError) as exc:
            checked.add(Problem("protect", (key,), f"[protect] {key}: {exc}"))


def _file_domains(checked: Checked) -> Iterator[tuple[str, Located]]:
    """Each domain of the ``[protect] files``, with its ``file:line``; an unreadable file is a problem."""
    for path in checked.config.protect_files():
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            checked.add(Problem("protect", ("files",), f"[protect] files: cannot read {path}: {why or exc}"))
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for name in resources.read_domain_list(line):
                yield name, Located(f"{path}:{n}", "", 0)


# --------------------------------------------------------------------------- paths and addresses
def directory_problem(path: Path, what: str) -> str | None:
    """Why ``path`` cannot be a directory this process writes in (None if it can, or could be created)."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{what} {path}: {probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        missing = "" if probe == path else f" (to create it in {probe})"
        return f"{what} {path}: not writable{missing}"
    return None


def file_problem(path: Path, what: str, *, write: bool = False) -> str | None:
    """Why ``path`` cannot be read (or, with ``write``, appended to or created in its directory, which must
    exist); None if it can."""
    if not path.exists():
        if not write:
            return f"{what} {path}: no such file"
        if not path.parent.is_dir():
            return f"{what} {path}: no directory {path.parent}"
        if not os.access(path.parent, os.W_OK | os.X_OK):
            return f"{what} {path}: cannot be created (directory {path.parent} not writable)"
        return None
    if path.is_dir():
        return f"{what} {path}: is a directory"
    if not os.access(path, os.W_OK if write else os.R_OK):
        return f"{what} {path}: not {'writable' if write else 'readable'}"
    return None


def under_base(config: Config, name: str) -> Path:
    """A path from the config: relative ones are relative to the config file's directory."""
    path = Path(name)
    return path if path.is_absolute() else Path(config.base_dir, path)


def check_addresses(checked: Checked) -> None:
    """Two services on one TCP address: the second cannot listen (``[http]`` only counts when enabled)."""
    config = checked.config
    listens: list[tuple[str, str, HostPort]] = []
    candidates: list[tuple[str, str, Any]] = [
        ("policyd", "listen", "listen_addresses"),
        ("policyd", "metrics_listen", "metrics_address"),
        ("relay", "listen", "listen_address"),
        ("sink", "listen", "listen_addresses"),
    ]
    if config.http.enabled:
        candidates.append(("http", "listen", "listen_address"))
    for section, key, attribute in candidates:
        try:
            value = getattr(getattr(config, section), attribute)
        except ConfigError:
            continue  # already a problem
        for address in value if isinstance(value, tuple) and not isinstance(value, HostPort) else (value,):
            if isinstance(address, HostPort):
                listens.append((section, key, address))
    for i, (section, key, address) in enumerate(listens):
        for other_section, other_key, other in listens[:i]:
            if _overlap(address, other) and (section, key) != (other_section, other_key):
                message = (
                    f"[{section}] {key} {address} is also [{other_section}] {other_key} ({other}):"
                    " one of them cannot listen"
                )
                checked.add(Problem(section, (key,), message))
                break


def _overlap(a: HostPort, b: HostPort) -> bool:
    """Whether listening on ``a`` and ``b`` collides: one port, and one host or a wildcard covering the
    other (0.0.0.0 every IPv4 address; :: every address, as Linux binds it dual-stack)."""
    if a.port != b.port:
        return False
    hosts = {a.host, b.host}
    return len(hosts) == 1 or "::" in hosts or ("0.0.0.0" in hosts and not any(":" in h for h in hosts))
