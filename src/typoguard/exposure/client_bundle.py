"""The client bundle: everything a mail client needs to decide as ``typoguard check`` does, as one JSON file.

``typoguard export --format client-bundle`` writes it; ``clients/detector/detector.mjs`` reads it (see
docs/clients.md for the schema, ADR 0021 for the choices). The typo models are **not** re-implemented in
JavaScript: the bundle carries what they produced (the compiled index: variant core -> packed entries), and
the tables the look-up needs besides (Public Suffix List rules, Unicode confusables and the few other
Unicode properties the look-up reads, the common words that can damp a match, the legitimate and trusted
domains, thresholds and scoring constants). The JavaScript re-does only the look-up, which is small and
pure, and a differential test (tests/clients/) holds it to the Python answers.

The file is ``{"format", "schema", "sha256", "content"}``: ``content`` is written in its canonical form
(sorted keys, no spaces, UTF-8), and ``sha256`` is the hash of exactly those bytes, so a client verifies a
bundle by hashing the text of its ``content`` member, without re-serialising anything. The same
configuration and typoguard version give the same bytes (no time stamp inside).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import unicodedata
from functools import cache
from importlib import metadata
from typing import Any

import idna
import idna.uts46data
import publicsuffixlist

from typoguard import resources
from typoguard.core import index as index_module
from typoguard.core.confusables import fold_to_ascii
from typoguard.core.detector import MIXED_SCRIPT_SCORE
from typoguard.core.index import LookalikeIndex
from typoguard.core.models import REGISTRY
from typoguard.errors import ConfigError
from typoguard.guard import Guard

FORMAT = "typoguard-client-bundle"
# Bump when a field changes meaning or the look-up needs data it did not get before: a client refuses a
# schema it does not know rather than deciding with half the data (docs/clients.md, "Versioning").
SCHEMA = 1
# The fields of each row of ``content.protected``, in order.
PROTECTED_FIELDS = (
    "domain", "core", "suffix", "unicode", "ucore", "registrable", "weight", "skeleton", "core_skeleton"
)  # fmt: skip


def build_content(guard: Guard) -> dict[str, Any]:
    """The bundle's content for ``guard`` (its protected domains, policy and configuration)."""
    index = guard.index
    policy = guard.detector.policy
    config = guard.config
    skeletons = resources.domain_skeletons()
    protected = [
        [p.domain, p.core, p.suffix, p.unicode, p.ucore, p.registrable, p.weight,
         skeletons.of(p.unicode), skeletons.of(p.ucore)]
        for p in index.protected
    ]  # fmt: skip
    tables = _index_tables(index)
    return {
        "typoguard": _version(),
        "data": {
            "public_suffix_list": publicsuffixlist.__version__,
            "unicode": unicodedata.unidata_version,
            "uts46": idna.uts46data.__version__,
        },
        "protected_fields": list(PROTECTED_FIELDS),
        "protected": protected,
        "models": [[m.name, m.prior] for m in index.models],
        "priors": {name: m.prior for name, m in REGISTRY.items()},
        "variants": tables["variants"],
        "policy": {
            "reject_at": policy.thresholds.reject_at,
            "hold_at": policy.thresholds.hold_at,
            "warn_at": policy.thresholds.warn_at,
            "mode": config.policy.mode,
        },
        "trusted": sorted(policy.trusted),
        "legitimate": sorted(policy.legitimate),
        "common_words": " ".join(sorted(_relevant_words(index, tables["words"]))),
        "scoring": _scoring(),
        "suffixes": _suffix_data(),
        "unicode": unicode_tables(),
        "replies": {
            "reject_template": config.policyd.reject_template,
            "reject_code": config.policyd.reject_code,
            "hold_template": config.policyd.hold_template,
            "help_text": config.policy.help_text,
        },
    }


def canonical(content: dict[str, Any]) -> bytes:
    """The canonical serialisation of ``content``: what ``sha256`` is computed over."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def bundle_text(guard: Guard) -> str:
    """The bundle file: the envelope with the canonical content embedded as it is hashed."""
    body = canonical(build_content(guard))
    digest = hashlib.sha256(body).hexdigest()
    head = f'{{"format":"{FORMAT}","schema":{SCHEMA},"sha256":"{digest}","content":'
    return head + body.decode("utf-8") + "}\n"


def content_bytes(text: str) -> bytes:
    """The bytes of a bundle's ``content`` member as written (what its ``sha256`` covers)."""
    start = text.index('"content":') + len('"content":')
    end = text.rindex("}")
    return text[start:end].encode("utf-8")


def verify(text: str) -> dict[str, Any]:
    """Parse a bundle file and check its format, schema and hash; returns the parsed envelope.

    Raises ``ConfigError`` saying what is wrong (a bundle is an exported configuration).
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"not a {FORMAT} file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"not a {FORMAT} file")
    if doc.get("schema") != SCHEMA:
        raise ConfigError(f"bundle schema {doc.get('schema')!r}, this typoguard reads schema {SCHEMA}")
    if "content" not in doc:
        raise ConfigError(f"not a {FORMAT} file: no content")
    if hashlib.sha256(content_bytes(text)).hexdigest() != doc.get("sha256"):
        raise ConfigError("bundle content does not match its sha256 (modified or re-formatted)")
    return doc


# ---------------------------------------------------------------------------------------------- the index
def _index_tables(index: LookalikeIndex) -> dict[str, Any]:
    """The compiled variant table and the common-word list, read from the index itself.

    These are the index's own private tables, read here on purpose: the bundle must carry exactly what the
    server looks up, not a second compilation that could drift from it. The variants are a line each,
    ``core=entry[,entry...]``, sorted by core (a string parses far faster than an object of 100,000 keys);
    entries keep the index's encoding, ``protected index << 6 | model index << 1 | any-suffix bit``, in
    the index's order (one per protected domain, the best prior kept).
    """
    variants: dict[str, int | tuple[int, ...]] = index._core_variants
    words: frozenset[str] = index._common_words
    lines = (f"{k}={v if isinstance(v, int) else ','.join(map(str, v))}" for k, v in sorted(variants.items()))
    return {"variants": "\n".join(lines), "words": words}


def _relevant_words(index: LookalikeIndex, words: frozenset[str]) -> set[str]:
    """The common words that can damp a match for these protected domains (a superset; the full list is
    75,000 words).

    A word damps a match only as the last label of the typed core, and only for (a) a core the index holds
    (a variant), (b) a core within two edits of a protected core (the fuzzy stage), or (c) a core whose
    skeleton is one edit from a protected core's (the fuzzy stage as read). In (b) and (c) the word is then
    within two edits of a *suffix* of the protected core (or of its skeleton), so it shares a
    two-deletion form with one: that is the test below. Words the test admits needlessly only cost bytes.
    """
    if not words:
        return set()
    out = {k.rsplit(".", 1)[-1] for k in index._core_variants} & words
    skeletons = resources.domain_skeletons()
    near: set[str] = set()
    for p in index.protected:
        for text in (p.core, skeletons.of(p.ucore)):
            for i in range(len(text)):
                near |= index_module._deletes(text[i:], 2)
    # A string more than two characters longer than every form in ``near`` has no two-deletion form in it:
    # skipping it by length gives the same set, without building ~n**2/2 strings for most of the words.
    longest = max(map(len, near), default=0) + 2
    for word in words:
        if word in out:
            continue
        if len(word) <= longest and not index_module._deletes(word, 2).isdisjoint(near):
            out.add(word)
            continue
        sk = skeletons.of(word)
        if sk != word and len(sk) <= longest and not index_module._deletes(sk, 2).isdisjoint(near):
            out.add(word)
    return out


def _scoring() -> dict[str, Any]:
    """The look-up's scoring constants (core/index.py, core/detector.py), so the client uses the server's."""
    m = index_module
    return {
        "suffix_typo_factor": m.SUFFIX_TYPO_FACTOR,
        "suffix_swap_factor": m.SUFFIX_SWAP_FACTOR,
        "prior_one_edit_and_swap": m.PRIOR_ONE_EDIT_AND_SWAP,
        "one_edit_kinds": sorted(m.ONE_EDIT_KINDS),
        "prior_unreal_suffix_typo": m.PRIOR_UNREAL_SUFFIX_TYPO,
        "prior_fuzzy_one": m.PRIOR_FUZZY_ONE,
        "prior_fuzzy_two": m.PRIOR_FUZZY_TWO,
        "fuzzy_two_min_len": m.FUZZY_TWO_MIN_LEN,
        "fuzzy_one_min_len": m.FUZZY_ONE_MIN_LEN,
        "dot_kinds": sorted(m._DOT_KINDS),
        "common_word_factor": m.COMMON_WORD_FACTOR,
        "damped_for_short_names": sorted(m.DAMPED_FOR_SHORT_NAMES),
        "length_factors": {str(n): m.length_factor("x" * n) for n in range(1, 64)},  # labels: 63 at most
        "mixed_script_score": MIXED_SCRIPT_SCORE,
    }


# ---------------------------------------------------------------------------------------------- suffixes
@cache
def _suffix_data() -> dict[str, Any]:
    """The ICANN rules of the Public Suffix List as ``publicsuffixlist`` holds them (A-labels only: look-ups
    are made on A-labels), and how the set of known suffixes differs from the plain rules (usually not)."""
    psl = publicsuffixlist.PublicSuffixList(only_icann=True)
    rules = sorted(r for r in psl._publicsuffix if r.isascii())
    plain = {r for r in rules if r[0] not in "*!"}
    known = resources.suffix_rules().known
    return {
        "rules": " ".join(rules),
        "max_labels": psl._maxlabel,
        "known_extra": sorted(known - plain),
        "known_missing": sorted(plain - known),
    }


# ---------------------------------------------------------------------------------------------- Unicode
@cache
def unicode_tables() -> dict[str, Any]:
    """The Unicode data the look-up reads that JavaScript does not have (or not in Python's version).

    JavaScript has NFC/NFD/NFKC (``String.prototype.normalize``) and general categories (``\\p{...}``); it
    has no confusables, no case folding, no combining classes, no character names and no UTS #46 table.
    """
    table = resources.confusable_table()
    skeletons = resources.domain_skeletons()
    casefold: dict[str, str] = {}
    combining: list[list[int]] = []
    fold: dict[str, str] = {}
    names: dict[str, str] = {}
    script_starts: list[int] = []
    script_words: list[str] = []
    for cp in range(0x110000):
        ch = chr(cp)
        unassigned = unicodedata.category(ch) in ("Cn", "Cs", "Co")  # no name, no mapping: only the run
        word = "" if unassigned else unicodedata.name(ch, "").split(" ", 1)[0]
        if not script_words or script_words[-1] != word:
            script_starts.append(cp)
            script_words.append(word)
        if unassigned:
            continue
        if ch.casefold() != ch:
            casefold[ch] = ch.casefold()
        if cp < 0x80:
            if 0x20 < cp < 0x7F and not ch.isalnum():
                names[ch] = unicodedata.name(ch).lower()  # '_' and the like, named in error messages
            continue
        if unicodedata.combining(ch):
            if combining and combining[-1][1] == cp - 1:
                combining[-1][1] = cp
            else:
                combining.append([cp, cp])
        folded = fold_to_ascii(ch, table)
        if folded is not None:
            fold[ch] = folded
        if _may_be_named(ch, table, skeletons.of, folded):
            names[ch] = unicodedata.name(ch).lower()
    words = sorted(set(script_words))
    at = {w: i for i, w in enumerate(words)}
    return {
        "ascii_skeleton": [skeletons.of(chr(c)) for c in range(128)],
        "confusables": _packed(table),
        "casefold": _packed(casefold),
        "combining": combining,
        "fold": _packed(fold),
        "names": _packed_names(names),
        "scripts": {
            "starts": _deltas(script_starts),
            "words": words,
            "index": [at[w] for w in script_words],
        },
        "uts46": _uts46_table(),
    }


def _packed(table: dict[str, str]) -> str:
    """A character table as one string: an entry a line, the character first, then its value.

    One long string parses far faster than an object of thousands of keys; a client builds its map only when
    a name that needs it arrives (most recipients are ASCII and need none of these tables).
    """
    for key, value in table.items():
        if len(key) != 1 or "\n" in key + value:
            raise ValueError(f"cannot pack {key!r}: {value!r}")  # pragma: no cover - Unicode data changed
    return "\n".join(k + v for k, v in sorted(table.items()))


def _packed_names(names: dict[str, str]) -> dict[str, str]:
    """Character names, word-coded: ``words`` (by frequency), and ``names`` packed as by ``_packed`` with
    each word written as its index in base 36 (``greek small letter kappa`` -> ``2 0 1 6b``)."""
    counts: dict[str, int] = {}
    for name in names.values():
        for word in name.split(" "):
            counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))
    code = {w: _base36(i) for i, w in enumerate(words)}
    return {
        "words": " ".join(words),
        "names": _packed({ch: " ".join(code[w] for w in name.split(" ")) for ch, name in names.items()}),
    }


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


# Scripts whose letters are mixed into Latin names to make look-alikes: every character of theirs is named.
NAMED_SCRIPTS = frozenset(
    {"LATIN", "GREEK", "CYRILLIC", "ARMENIAN", "COPTIC", "CHEROKEE", "GEORGIAN", "MODIFIER", "COMBINING"}
)


def _may_be_named(ch: str, table: dict[str, str], skeleton: Any, folded: str | None) -> bool:
    """Whether a reason may name ``ch``: it is a letter of a script mixed into Latin names, it reads as ASCII
    (a homoglyph of an ASCII name, or a character UTS #46 maps to ASCII), or it is disallowed in host names
    (named in the error). Other characters, 30,000 names, are left out: the look-up writes ``u+xxxx``."""
    name = unicodedata.name(ch, "")
    if not name:
        return False
    if name.split(" ", 1)[0] in NAMED_SCRIPTS:
        return True
    if folded is not None or (ch in table and skeleton(ch).isascii()):
        return True
    changes = unicodedata.normalize("NFD", ch) != ch or ch.casefold() != ch
    if changes and skeleton(ch).isascii():
        return True
    if unicodedata.combining(ch):
        return True
    status, mapped = _uts46_status(ord(ch))
    if status not in "VDMI":
        return True  # disallowed in a host name: named in the error a person reads
    return status in "MI" and (mapped or "").isascii()


def _uts46_status(cp: int) -> tuple[str, str | None]:
    data = idna.uts46data
    i = bisect.bisect_right(data.uts46_starts, cp) - 1
    return chr(data.uts46_statuses[i]), data.uts46_replacements[i]


def _uts46_table() -> dict[str, Any]:
    """``idna``'s UTS #46 table: range starts (as deltas), one status letter per range, and the
    replacement of each mapped (``M``) range in order, a line each."""
    data = idna.uts46data
    statuses = bytes(data.uts46_statuses).decode("ascii")
    mapped = [r or "" for s, r in zip(statuses, data.uts46_replacements, strict=True) if s == "M"]
    if any("\n" in m for m in mapped):
        raise ValueError("cannot pack the UTS #46 mappings")  # pragma: no cover - Unicode data changed
    return {"starts": _deltas(list(data.uts46_starts)), "status": statuses, "mapped": "\n".join(mapped)}


def _deltas(values: list[int]) -> list[int]:
    return [v - (values[i - 1] if i else 0) for i, v in enumerate(values)]


def _version() -> str:
    try:
        return metadata.version("typoguard")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"
