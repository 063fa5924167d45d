"""The look-alike index: protected domains compiled once, then typed domains looked up in O(1).

Every look-alike is a change to the *core* (the labels left of the public suffix: ``army`` in ``army.mil``,
``ca.ibm`` in ``ca.ibm.com``) combined with a relation between the typed suffix and the protected one (the
same, a one-edit typo such as ``.mil``/``.ml``, or another suffix altogether). So the index holds:

* ``_core_exact``: core -> protected domains with that core (``army`` -> army.mil), for suffix typos/swaps;
* ``_core_variants``: every core a typo model makes -> (protected domain, kind), for the label slips;
* ``_skeleton_*``: UTS #39 skeletons of protected domains and cores, for homoglyphs from any script, and a
  fold of what the standard leaves out (small capitals, hooked letters) for the rest;
* ``_deletes``: a deletion index (SymSpell) of protected cores, the bounded fuzzy stage for slips no model
  precomputes (two edits, or an arbitrary character).

Look-up splits the typed domain once at its public suffix and probes these dictionaries; no step scans the
protected list. Pure: every table comes in through ``compile``'s arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from typoguard.core.confusables import DomainSkeletons
from typoguard.core.describe import describe_change, glyph_note
from typoguard.core.models import (
    REGISTRY,
    ModelContext,
    SimpleModel,
    Target,
    TypoModel,
    ascii_core,
    select_models,
)
from typoguard.core.names import Domain, normalise_domain
from typoguard.core.verdict import Finding
from typoguard.errors import InvalidAddress

# How much a combined slip keeps of its label-slip prior when the suffix differs too.
SUFFIX_TYPO_FACTOR = 0.9
SUFFIX_SWAP_FACTOR = 0.6
# One edit in the label *and* the suffix swapped (yafoo.net for yahoo.com, .net typed out of habit): two slips
# in one name, but such names are registered and receive mail (Szurdi & Christin, IMC 2017; Moore &
# Edelman, FC 2010). A single-edit slip under another suffix keeps at least this (times the short-name
# factor), enough to warn; never more: a suffix swap is never rejected or held.
PRIOR_ONE_EDIT_AND_SWAP = 0.42
# Label slips of one edit (a character dropped, added, replaced, swapped or flipped) that keep the floor.
ONE_EDIT_KINDS = frozenset(
    {"omission", "insertion", "replacement", "transposition", "repetition", "vowel_swap", "bitsquat",
     "hyphenation", "edit"}
)  # fmt: skip
# Priors of matches the models do not precompute (see docs/scoring.md).
PRIOR_UNREAL_SUFFIX_TYPO = 0.9  # army.mi: one edit from .mil but no such suffix (bounces; still a slip)
PRIOR_FUZZY_ONE = 0.55  # one arbitrary edit not explained by a keyboard or visual model
PRIOR_FUZZY_TWO = 0.42  # two edits, long names only
FUZZY_TWO_MIN_LEN = 8  # cores shorter than this get no two-edit fuzzy matches
FUZZY_ONE_MIN_LEN = 4
_DOT_KINDS = frozenset({"dot_omission", "dot_hyphen"})  # may leave a shorter suffix
# A look-alike whose name is itself a common word (life.com for live.com) was more likely chosen than typed.
COMMON_WORD_FACTOR = 0.6
# Models whose edits of a short name often land on someone else's real name.
DAMPED_FOR_SHORT_NAMES = frozenset(
    {"omission", "insertion", "replacement", "transposition", "repetition", "vowel_swap", "bitsquat",
     "ascii_lookalike", "dot_shift"}
)  # fmt: skip
_FREE_SUFFIX_DEFAULTS = ("com", "net", "org")  # suffixes listed for "any suffix" variants


def length_factor(core: str) -> float:
    """Edits of short names land on unrelated real names more often; damp their score.

    The main label of ``ca.ibm`` is ``ibm`` (3 letters): ``ibn.com`` is far more likely someone else's
    domain than ``gmaul.com`` is.
    """
    n = len(core.rsplit(".", 1)[-1])
    return {1: 0.5, 2: 0.6, 3: 0.7, 4: 0.93}.get(n, 1.0)


@dataclass(frozen=True, slots=True)
class Protected:
    """A compiled protected domain. ``u*`` fields are what a person reads (Unicode)."""

    domain: str
    core: str
    suffix: str
    unicode: str
    ucore: str
    registrable: str
    weight: float


@dataclass(frozen=True, slots=True)
class _Query:
    """A typed domain, split: ASCII forms for the tables, Unicode forms for the sentences."""

    name: str
    core: str
    suffix: str
    unicode: str
    ucore: str


def _unicode_core(unicode: str, suffix: str) -> str:
    labels = unicode.split(".")
    return ".".join(labels[: len(labels) - suffix.count(".") - 1])


class LookalikeIndex:
    """Protected domains compiled for reverse look-up: typed domain -> findings, best first."""

    def __init__(
        self,
        protected: Sequence[Protected],
        models: Sequence[TypoModel],
        ctx: ModelContext,
        skeletons: DomainSkeletons,
        common_words: frozenset[str] = frozenset(),
    ) -> None:
        self._protected = tuple(protected)
        self._common_words = common_words
        self._models = tuple(models)
        self._kinds = tuple(m.name for m in self._models)
        self._priors = tuple(m.prior for m in self._models)
        self._ctx = ctx
        self._suffixes = ctx.suffixes
        self._skeletons = skeletons
        self.domains: frozenset[str] = frozenset(p.domain for p in self._protected)
        self.registrables: frozenset[str] = frozenset(p.registrable for p in self._protected)
        self._core_exact: dict[str, tuple[int, ...]] = {}
        self._core_variants: dict[str, int | tuple[int, ...]] = {}
        self._skeleton_full: dict[str, tuple[int, ...]] = {}
        self._skeleton_core: dict[str, tuple[int, ...]] = {}
        self._deletes: dict[str, tuple[int, ...]] = {}
        self._skeleton_deletes: dict[str, tuple[int, ...]] = {}
        self._max_core = 0
        self._max_labels = 2
        self._by_domain: dict[str, int] = {}
        self._by_registrable: dict[str, int] = {}
        self._build()

    # ------------------------------------------------------------------ compile
    @classmethod
    def compile(
        cls,
        domains: Iterable[Domain],
        ctx: ModelContext,
        skeletons: DomainSkeletons,
        *,
        models: Iterable[str] | None = None,
        weights: Mapping[str, float] | None = None,
        common_words: frozenset[str] = frozenset(),
    ) -> LookalikeIndex:
        """Compile normalised protected domains. ``models`` names the typo models (all by default)."""
        weights = weights or {}
        seen: dict[str, Protected] = {}
        for d in domains:
            if d.ascii in seen:
                continue
            core, suffix = ctx.suffixes.split(d.ascii)
            if not core:  # a bare public suffix cannot be protected as a domain
                continue
            registrable = core.rsplit(".", 1)[-1] + "." + suffix
            ucore = _unicode_core(d.unicode, suffix)
            seen[d.ascii] = Protected(
                d.ascii, core, suffix, d.unicode, ucore, registrable, weights.get(d.ascii, 1.0)
            )
        return cls(list(seen.values()), select_models(models), ctx, skeletons, common_words)

    def _build(self) -> None:
        exact: dict[str, list[int]] = {}
        variants = self._core_variants
        kind_index = {k: i for i, k in enumerate(self._kinds)}
        for pidx, p in enumerate(self._protected):
            exact.setdefault(p.core, []).append(pidx)
            # Models work on what a person types: the Unicode name; the index keys are A-labels.
            target = Target(p.domain, p.ucore, p.suffix)
            idn = not p.ucore.isascii()
            for model in self._models:
                if not model.indexed:
                    continue
                kidx = kind_index[model.name]
                if isinstance(model, SimpleModel):  # its cores are all under the target's own suffix
                    packed = (pidx << 6) | (kidx << 1)
                    get = variants.get
                    for core in model.cores(target, self._ctx):
                        key = ascii_core(core) if idn else core
                        if key is None:
                            continue
                        old = get(key)
                        variants[key] = packed if old is None else self._merge(old, packed)
                    continue
                for v in model.variants(target, self._ctx):
                    key = ascii_core(v.core) if idn else v.core
                    if key is None:
                        continue
                    packed = (pidx << 6) | (kidx << 1) | (v.suffix is None)
                    old = variants.get(key)
                    variants[key] = packed if old is None else self._merge(old, packed)
        self._core_exact = {k: tuple(v) for k, v in exact.items()}
        sk_full: dict[str, list[int]] = {}
        sk_core: dict[str, list[int]] = {}
        deletes: dict[str, list[int]] = {}
        sk_deletes: dict[str, list[int]] = {}
        for pidx, p in enumerate(self._protected):
            sk_full.setdefault(self._skeletons.of(p.unicode), []).append(pidx)
            core_skeleton = self._skeletons.of(p.ucore)
            sk_core.setdefault(core_skeleton, []).append(pidx)
            if len(p.core) >= FUZZY_ONE_MIN_LEN:
                depth = 2 if len(p.core) >= FUZZY_TWO_MIN_LEN else 1
                for d in _deletes(p.core, depth):
                    lst = deletes.setdefault(d, [])
                    if not lst or lst[-1] != pidx:
                        lst.append(pidx)
                for d in _deletes(core_skeleton, 1):
                    lst = sk_deletes.setdefault(d, [])
                    if not lst or lst[-1] != pidx:
                        lst.append(pidx)
        self._skeleton_full = {k: tuple(v) for k, v in sk_full.items()}
        self._skeleton_core = {k: tuple(v) for k, v in sk_core.items()}
        self._deletes = {k: tuple(v) for k, v in deletes.items()}
        self._skeleton_deletes = {k: tuple(v) for k, v in sk_deletes.items()}
        self._max_core = max((len(p.core) for p in self._protected), default=0)
        self._max_labels = max((p.domain.count(".") + 1 for p in self._protected), default=2)
        self._by_domain = {p.domain: i for i, p in enumerate(self._protected)}
        for i, p in enumerate(self._protected):
            self._by_registrable.setdefault(p.registrable, i)

    def _merge(self, old: int | tuple[int, ...], new: int) -> int | tuple[int, ...]:
        """Keep, per protected domain, the entry with the highest prior."""
        entries = (old,) if isinstance(old, int) else old
        pidx = new >> 6
        out = []
        replaced = False
        for e in entries:
            if e >> 6 == pidx:
                replaced = True
                out.append(new if self._priors[(new >> 1) & 31] > self._priors[(e >> 1) & 31] else e)
            else:
                out.append(e)
        if not replaced:
            out.append(new)
        return out[0] if len(out) == 1 else tuple(out)

    # ------------------------------------------------------------------ facts
    @property
    def protected(self) -> tuple[Protected, ...]:
        return self._protected

    @property
    def models(self) -> tuple[TypoModel, ...]:
        return self._models

    def __len__(self) -> int:
        return len(self._core_variants)

    def is_protected(self, domain: str) -> bool:
        """The domain is protected, or a subdomain of a protected domain's organisation."""
        if domain in self.domains:
            return True
        return self._suffixes.registrable(domain) in self.registrables

    # ------------------------------------------------------------------ look-up
    def lookup(self, domain: Domain) -> list[Finding]:
        """Findings for a normalised domain, best first; empty if it looks like nothing protected."""
        if self.is_protected(domain.ascii):
            return []
        return self._lookup_whole(domain) or self._under_a_lookalike(domain)

    def _lookup_whole(self, domain: Domain) -> list[Finding]:
        """Findings for the name as a whole (``lookup`` without the hosts under a look-alike)."""
        name = domain.ascii
        qcore, qsuffix = self._suffixes.split(name)
        q = _Query(name, qcore, qsuffix, domain.unicode, _unicode_core(domain.unicode, qsuffix))
        found: dict[int, Finding] = {}
        if not q.unicode.isascii():
            self._probe_mapped(q, found)
        if qcore:
            self._probe_exact(q, found)
            self._probe_variants(q, found)
        self._probe_skeletons(q, found)
        if not found and qcore and not q.ucore.isascii():
            self._probe_folded(q, found)
        if not found and qcore:
            self._probe_fuzzy(q, found)
        if not found and qcore:
            self._probe_skeleton_fuzzy(q, found)
        return sorted(found.values(), key=lambda f: (-f.score, f.intended or ""))

    def _under_a_lookalike(self, domain: Domain) -> list[Finding]:
        """Findings for a host under a look-alike (``us.army.ml`` under ``army.ml``, which looks like
        ``army.mil``; ``mail.ca.ibm.co`` under ``ca.ibm.co``): whoever owns that name receives the host's
        mail, and the sender meant the same host under the protected domain (``us.army.mil``). The parents
        tried are those a look-alike can be: from one label more than the longest protected domain down to
        the registrable domain, the longest with a finding wins (a few look-ups however many labels a
        hostile name has). Empty for anything else."""
        name = domain.ascii
        labels = name.split(".")
        ulabels = domain.unicode.split(".")
        if len(ulabels) != len(labels):  # pragma: no cover - a normalised name keeps its labels
            ulabels = labels
        registrable = self._suffixes.registrable(name)
        shortest = registrable.count(".") + 1 if registrable else 2
        longest = min(len(labels) - 1, self._max_labels + 1)
        for size in range(longest, shortest - 1, -1):
            cut = len(labels) - size
            parent, uparent = ".".join(labels[cut:]), ".".join(ulabels[cut:])
            # (never protected: it shares the name's registrable domain, which ``lookup`` checked)
            found = self._lookup_whole(Domain(parent, uparent))
            if found:
                host = ".".join(labels[:cut])
                return [
                    Finding(
                        name,
                        f"{host}.{f.intended}" if f.intended else None,
                        f.kind,
                        f.score,
                        f"{domain.unicode} is a host under {uparent}; {f.reason}",
                    )
                    for f in found
                ]
        return []

    @staticmethod
    def _keep(found: dict[int, Finding], pidx: int, finding: Finding) -> None:
        old = found.get(pidx)
        if old is None or finding.score > old.score:
            found[pidx] = finding

    def _finding(self, q: _Query, p: Protected, kind: str, score: float, why: str) -> Finding:
        return Finding(
            q.name, p.domain, kind, _clip(score * p.weight), f"{q.unicode} looks like {p.unicode} {why}"
        )

    def _suffix_relation(self, qsuffix: str, p: Protected) -> str:
        if qsuffix == p.suffix:
            return "same"
        if qsuffix in self._suffixes.one_edit_suffixes(p.suffix):
            return "typo"
        if not self._suffixes.is_known(qsuffix) and OSA.distance(qsuffix, p.suffix) == 1:
            return "unreal_typo"
        return "other"

    def _combine_suffix(
        self, q: _Query, p: Protected, kind: str, score: float, why: str
    ) -> tuple[str, float, str]:
        """Fold the suffix relation into a label slip's kind, score and explanation."""
        rel = self._suffix_relation(q.suffix, p)
        if rel in ("typo", "unreal_typo"):
            return (f"{kind}+suffix_typo", score * SUFFIX_TYPO_FACTOR,
                    f"{why}, and {describe_change(q.suffix, p.suffix, '.' + p.suffix)}")  # fmt: skip
        if rel == "other":
            swapped = score * SUFFIX_SWAP_FACTOR
            if kind in ONE_EDIT_KINDS:
                swapped = max(swapped, PRIOR_ONE_EDIT_AND_SWAP * length_factor(p.core))
            return f"{kind}+suffix_swap", swapped, f"{why}, under .{q.suffix} instead of .{p.suffix}"
        return kind, score, why

    def _probe_exact(self, q: _Query, found: dict[int, Finding]) -> None:
        for pidx in self._core_exact.get(q.core, ()):
            p = self._protected[pidx]
            rel = self._suffix_relation(q.suffix, p)
            change = describe_change(q.suffix, p.suffix, "." + p.suffix)
            if rel == "typo":
                kind, prior, why = "suffix_typo", self._prior("suffix_typo"), change
            elif rel == "unreal_typo":
                kind, prior = "suffix_typo", PRIOR_UNREAL_SUFFIX_TYPO
                why = f"{change} (.{q.suffix} is no real suffix: such mail bounces)"
            elif rel == "other":
                kind, prior = "suffix_swap", self._prior("suffix_swap")
                why = f"the suffix .{q.suffix} in place of .{p.suffix}"
            else:  # same core and suffix: only reached for folded homoglyphs
                continue
            self._keep(found, pidx, self._finding(q, p, kind, prior, f"with {why}"))

    def _probe_variants(self, q: _Query, found: dict[int, Finding], *, words: bool = True) -> None:
        entry = self._core_variants.get(q.core)
        if entry is None:
            return
        for packed in (entry,) if isinstance(entry, int) else entry:
            p = self._protected[packed >> 6]
            kidx = (packed >> 1) & 31
            kind, score = self._kinds[kidx], self._priors[kidx]
            if packed & 1:  # any suffix: armymil.com, army-mil.com, army.mil.com
                if kind == "suffix_append":
                    why = f"'.{q.suffix}' appended"
                elif kind == "dot_hyphen":
                    why = f"the dot before '{p.suffix}' typed as a hyphen and '.{q.suffix}' added"
                else:
                    why = f"the dot before '{p.suffix}' dropped and '.{q.suffix}' added"
            elif kind == "dot_shift" and q.core == f"{p.core}{p.suffix[0]}" and p.suffix[1:] == q.suffix:
                why = f"the dot typed one letter late: .{q.suffix} instead of .{p.suffix}"
                score *= length_factor(p.core)  # afm.il for af.mil may well be someone's own name
            elif kind in _DOT_KINDS and p.suffix.endswith("." + q.suffix):  # bbcco.uk for bbc.co.uk
                inner = p.suffix[: -len(q.suffix) - 1]
                done = "typed as a hyphen" if kind == "dot_hyphen" else "dropped"
                why = f"the dot between '{p.core.rsplit('.', 1)[-1]}' and '{inner}' {done}"
            else:
                if kind == "www_prefix":
                    why = f"'www' typed before {p.ucore} without its dot"
                else:
                    why = describe_change(q.ucore, p.ucore, p.ucore)
                if kind in DAMPED_FOR_SHORT_NAMES:
                    score *= length_factor(p.core)
                kind, score, why = self._combine_suffix(q, p, kind, score, why)
                if words:
                    score, why = self._word_damping(q.core, p.core, score, why)
            self._keep(found, packed >> 6, self._finding(q, p, kind, score, f"with {why}"))

    def _probe_mapped(self, q: _Query, found: dict[int, Finding]) -> None:
        """A name that UTS #46 maps onto a protected one (``gⅿail.com``, fullwidth ``ａｒｍｙ.ｍｉｌ``, a soft
        hyphen inside): typed or registered as it is, it reads as the protected name but is another one."""
        try:
            mapped = normalise_domain(q.unicode)
        except InvalidAddress:
            return
        if mapped.ascii == q.name or not self.is_protected(mapped.ascii):
            return
        pidx = self._by_domain.get(mapped.ascii)
        if pidx is None:
            pidx = self._by_registrable.get(self._suffixes.registrable(mapped.ascii) or "")
        if pidx is None:  # pragma: no cover - is_protected said it is one of them
            return
        p = self._protected[pidx]
        note = glyph_note(q.unicode, mapped.unicode).replace(f"{mapped.unicode}'s own", f"{p.ucore}'s own")
        self._keep(found, pidx, self._finding(q, p, "homoglyph", self._prior("homoglyph"), f"({note})"))

    def _probe_skeletons(self, q: _Query, found: dict[int, Finding]) -> None:
        hits = self._skeleton_full.get(self._skeletons.of(q.unicode), ())
        # An all-ASCII name that shares a skeleton is an ASCII look-alike (rn/m, 0/o), not another script.
        glyph_kind = "ascii_lookalike" if q.unicode.isascii() else "homoglyph"
        prior = self._prior(glyph_kind)
        # An ASCII look-alike is a letter edit, damped for short names as the model's variants are (dla.mil
        # and dia.mil are two agencies); another script inside a name is not (no one types it by chance).
        damped = glyph_kind in DAMPED_FOR_SHORT_NAMES
        for pidx in hits:
            p = self._protected[pidx]
            if p.domain != q.name:
                score = prior * length_factor(p.core) if damped else prior
                self._keep(
                    found, pidx, self._finding(q, p, glyph_kind, score, f"({glyph_note(q.ucore, p.ucore)})")
                )
        if hits or not q.core:
            return
        for pidx in self._skeleton_core.get(self._skeletons.of(q.ucore), ()):
            p = self._protected[pidx]
            if pidx in found or q.core == p.core:
                continue
            score = prior * length_factor(p.core) if damped else prior
            kind, score, why = self._combine_suffix(q, p, glyph_kind, score, glyph_note(q.ucore, p.ucore))
            self._keep(found, pidx, self._finding(q, p, kind, score, f"({why})"))

    def _probe_folded(self, q: _Query, found: dict[int, Finding]) -> None:
        """An IDN whose letters read as ASCII ones UTS #39 does not list: match what it reads as."""
        folded = self._skeletons.fold(q.ucore)
        if folded is None or ascii_core(folded) is None or folded == q.core:
            return
        fq = _Query(q.name, folded, q.suffix, f"{folded}.{q.suffix}", folded)
        inner: dict[int, Finding] = {}
        for pidx in self._core_exact.get(folded, ()):
            p = self._protected[pidx]
            kind, score, why = self._combine_suffix(fq, p, "homoglyph", 1.0, "")
            why = why.removeprefix(", and ").removeprefix(", ")
            inner[pidx] = self._finding(fq, p, kind, score, f"with {why}")
        self._probe_variants(fq, inner, words=False)  # a name spelt with foreign letters is no chosen word
        if not inner:
            self._probe_fuzzy(fq, inner)
        prior = self._prior("homoglyph")
        for pidx, f in inner.items():
            p = self._protected[pidx]
            kind = f.kind if f.kind.startswith("homoglyph") else f"homoglyph+{f.kind}"
            rest = f.reason.removeprefix(f"{fq.unicode} looks like {p.unicode} with ")
            why = f"({glyph_note(q.ucore, p.ucore)}; it reads as {fq.unicode}" + (
                f", with {rest})" if rest else ")"
            )
            reason = f"{q.unicode} looks like {p.unicode} {why}"
            self._keep(found, pidx, Finding(q.name, p.domain, kind, _clip(f.score * prior), reason))

    def _probe_fuzzy(self, q: _Query, found: dict[int, Finding]) -> None:
        qcore = q.core
        if not FUZZY_ONE_MIN_LEN - 1 <= len(qcore) <= self._max_core + 2:
            return
        candidates: set[int] = set()
        for d in _deletes(qcore, 2 if len(qcore) >= FUZZY_TWO_MIN_LEN - 2 else 1):
            candidates.update(self._deletes.get(d, ()))
        for pidx in candidates:
            p = self._protected[pidx]
            dist = OSA.distance(qcore, p.core, score_cutoff=2)
            if dist == 0 or dist > 2 or (dist == 2 and len(p.core) < FUZZY_TWO_MIN_LEN):
                continue
            prior = (PRIOR_FUZZY_ONE if dist == 1 else PRIOR_FUZZY_TWO) * length_factor(p.core)
            why = describe_change(q.ucore, p.ucore, p.ucore) if dist == 1 else f"two slips in {p.ucore}"
            kind, prior, why = self._combine_suffix(q, p, "edit" if dist == 1 else "two_edits", prior, why)
            prior, why = self._word_damping(qcore, p.core, prior, why)
            self._keep(found, pidx, self._finding(q, p, kind, prior, f"with {why}"))

    def _probe_skeleton_fuzzy(self, q: _Query, found: dict[int, Finding]) -> None:
        """One edit away from a protected name *as read*.

        ``gna1l`` reads as ``gnall``, one step from ``gmail`` read as ``grnall``: two look-alike substitutions
        at once, which plain edit distance counts as two.
        """
        sk = self._skeletons.of(q.ucore)
        if not FUZZY_ONE_MIN_LEN - 1 <= len(sk) <= 2 * self._max_core + 2:
            return
        candidates: set[int] = set()
        for d in _deletes(sk, 1):
            candidates.update(self._skeleton_deletes.get(d, ()))
        glyph_kind = "ascii_lookalike" if q.ucore.isascii() else "homoglyph"
        for pidx in candidates:
            p = self._protected[pidx]
            if OSA.distance(sk, self._skeletons.of(p.ucore), score_cutoff=1) != 1:
                continue
            prior = PRIOR_FUZZY_ONE * length_factor(p.core)
            why = f"{glyph_note(q.ucore, p.ucore)}, and one more slip"
            kind, prior, why = self._combine_suffix(q, p, f"{glyph_kind}+edit", prior, why)
            prior, why = self._word_damping(q.core, p.core, prior, why)
            self._keep(found, pidx, self._finding(q, p, kind, prior, f"({why})"))

    def _word_damping(self, qcore: str, pcore: str, score: float, why: str) -> tuple[float, str]:
        """Damp a label slip whose result is itself a common word (``life`` typed for ``live``)."""
        typed = qcore.rsplit(".", 1)[-1]
        if typed != pcore.rsplit(".", 1)[-1] and typed in self._common_words:
            return (
                score * COMMON_WORD_FACTOR,
                f"{why}; but '{typed}' is a common word, likely chosen on purpose",
            )
        return score, why

    def _prior(self, kind: str) -> float:
        try:
            return self._priors[self._kinds.index(kind)]
        except ValueError:  # model disabled in configuration: the match still counts, at its default
            return REGISTRY[kind].prior

    # ------------------------------------------------------------------ generation
    def variants_of(self, domain: Domain) -> Iterator[tuple[str, str, float]]:
        """(look-alike domain, kind, score) of a protected domain, best first.

        The models generate the names; the score and kind are what a check of that name gives, so this list
        and ``typoguard check`` never disagree. Names that would not be flagged as this domain are left out.
        """
        core, suffix = self._suffixes.split(domain.ascii)
        if not core:  # a bare public suffix has no look-alikes of its own
            return iter(())
        if domain.ascii not in self.domains:
            raise ValueError(f"{domain.ascii} is not protected by this index")
        target = Target(domain.ascii, _unicode_core(domain.unicode, suffix), suffix)
        names: dict[str, None] = {}
        for model in self._models:
            for v in model.variants(target, self._ctx):
                acore = ascii_core(v.core)
                if acore is None:
                    continue
                # "any suffix" variants (armymil.com): the common ones, and the domain's own (armymil.mil)
                free = (
                    (*_FREE_SUFFIX_DEFAULTS, suffix)
                    if suffix not in _FREE_SUFFIX_DEFAULTS
                    else _FREE_SUFFIX_DEFAULTS
                )
                for s in (v.suffix,) if v.suffix is not None else free:
                    names[f"{acore}.{s}"] = None
        ranked = []
        for name in names:
            try:
                typed = normalise_domain(name)
            except InvalidAddress:
                continue
            if typed.ascii == domain.ascii or self.is_protected(typed.ascii):
                continue
            for f in self.lookup(typed):
                if f.intended == domain.ascii:
                    ranked.append((typed.ascii, f.kind, round(f.score, 4)))
                    break
        ranked.sort(key=lambda r: (-r[2], r[0]))
        return iter(ranked)


def _deletes(word: str, depth: int) -> set[str]:
    """``word`` and every string made by deleting up to ``depth`` (1 or 2) of its characters."""
    n = len(word)
    one = {word[:i] + word[i + 1 :] for i in range(n)}
    if depth < 2:
        one.add(word)
        return one
    two = {w[:i] + w[i + 1 :] for w in one for i in range(n - 1)}
    two |= one
    two.add(word)
    return two


def _clip(score: float) -> float:
    return 0.0 if score < 0 else 1.0 if score > 1 else score
