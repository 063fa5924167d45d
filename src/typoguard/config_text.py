"""The configuration as text: ``typoguard config show`` (the effective values as TOML, each with its source)
and docs/configuration.md (every key with type, default and meaning), both from the schema in
``typoguard.config`` (its dataclasses, their docstrings and each key's ``help``), so neither can drift from
the code. ``scripts/gen-config-docs.py`` writes the document; a test fails when it is stale.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import Field, fields
from typing import Any, Final

from typoguard.config import ENV_PREFIX, SECTIONS, TABLE_LISTS, Config

# --------------------------------------------------------------------------- TOML values
_ESCAPES: Final = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    """A config value (string, number, boolean, list of strings, table of numbers) as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # TOML reads Python's int and float literals, inf and nan included
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def help_of(f: Field[Any]) -> str:
    """A key's one-line ``help`` (from its field metadata)."""
    return str(f.metadata.get("help", ""))


# --------------------------------------------------------------------------- config show
def render_effective(config: Config, sources: Mapping[tuple[str, str], str]) -> str:
    """Every key of ``config`` as TOML, each line ending with its source: ``# default``, ``# file:LINE``
    or ``# env TYPOGUARD_...`` (``sources`` names the keys not at their default). A key that is not set
    (``[protect] models``: TOML has no "none") is a comment line."""
    origin = config.source if config.source != "<defaults>" else "no file"
    lines = [
        "# typoguard: the effective configuration (defaults < config file < TYPOGUARD_* environment)",
        f"# config file: {origin}",
    ]
    for section, cls in SECTIONS.items():
        values = getattr(config, section)
        lines += ["", f"[{section}]"]
        for f in fields(cls):
            source = sources.get((section, f.name), "default")
            value = getattr(values, f.name)
            if value is None:
                lines.append(f"# {f.name} = (not set)  # {source}")
            else:
                lines.append(f"{f.name} = {toml_value(value)}  # {source}")
    for section, cls in TABLE_LISTS.items():
        for table in getattr(config, section):
            lines += ["", f"[[{section}]]  # file"]
            lines += [f"{f.name} = {toml_value(getattr(table, f.name))}" for f in fields(cls)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- docs/configuration.md
_TYPES: Final = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "bool | str": "boolean or string",
    "tuple[str, ...]": "list of strings",
    "tuple[str, ...] | None": "list of strings (optional)",
    "Mapping[str, float]": "table of numbers",
}

REGENERATE: Final = ".venv/bin/python scripts/gen-config-docs.py"

_INTRO: Final = f"""\
# Configuration

<!-- Generated from the schema in src/typoguard/config.py by `{REGENERATE}`: do not edit by hand. -->

typoguard reads one TOML file, given with `--config FILE` (the Debian package installs
`/etc/typoguard/typoguard.toml`; `examples/typoguard.toml` is a full example). Every key is optional: an
empty file is a valid configuration, and a key that is not in the file takes the default below.

- **Layers.** Defaults, then the file, then the environment: `{ENV_PREFIX}<SECTION>__<KEY>` with a TOML
  value overrides one key, e.g. `{ENV_PREFIX}POLICY__MODE='"audit"'` or
  `{ENV_PREFIX}POLICYD__LISTEN=127.0.0.1:10041` (a bare word is taken as a string).
- **Mistakes are errors.** An unknown section or key, a value of the wrong type or out of range stops the
  service with a message naming it (exit 2): a typo in a security setting is never silently ignored.
- **Paths.** Relative paths in `[protect] files`, `[store]`, `[http]`, `[relay]` and `[sink]` are relative
  to the directory of the config file.
- **Check before reload.** `typoguard config check --config FILE` lists every problem at once with its
  `file:line` (exit 0 fine, 1 problems, 2 the file cannot be read);
  `typoguard config show --config FILE` prints the effective configuration, each value with its source.
"""


def _cell(text: str, *, code: bool = False) -> str:
    """Text for a Markdown table cell: one line, | (and outside code, < and *) as themselves, not markup."""
    for ch in "|" if code else "|<*":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def _default(f: Field[Any]) -> str:
    value = f.default_factory() if callable(f.default_factory) else f.default
    if value is None:
        return "not set"
    return f"`{_cell(toml_value(value), code=True)}`"


def render_markdown() -> str:
    """docs/configuration.md: every section and key with its type, default and meaning."""
    parts = [_INTRO]
    for section, cls in SECTIONS.items():
        parts.append(f"\n## [{section}]\n\n{inspect.cleandoc(cls.__doc__ or '')}\n\n")
        parts.append("| Key | Type | Default | Meaning |\n|---|---|---|---|\n")
        for f in fields(cls):
            kind = _TYPES[str(f.type)]
            parts.append(f"| `{f.name}` | {kind} | {_default(f)} | {_cell(help_of(f))} |\n")
    for section, cls in TABLE_LISTS.items():
        parts.append(f"\n## [[{section}]]\n\n{inspect.cleandoc(cls.__doc__ or '')}\n\n")
        parts.append("| Key | Type | Default | Meaning |\n|---|---|---|---|\n")
        for f in fields(cls):
            kind = _TYPES[str(f.type)]
            parts.append(f"| `{f.name}` | {kind} | {_default(f)} | {_cell(help_of(f))} |\n")
    return "".join(parts)
