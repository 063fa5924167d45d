"""The look-alike index: protected domains compiled once, then typed domains looked up in O(1).

Every look-alike is a change to the *core* (the labels left of the public suffix: ``army`` in ``army.mil``,
``ca.ibm`` in ``ca.ibm.com``) combined with a relation between the typed suffix and the protected one (the
same, a one-edit typo such as ``.mil``/``.ml``, or another suffix altogether). So the index holds:

* ``_core_exact``: core -> protected domains with that core (``army`` -> army.mil), for suffix typos/swaps;
* ``_core_variants``: every core a typo model makes -> (protected domain, kind), for the label slips;
* ``_skeletons``: UTS #39 skeletons of protected domains and cores, for homoglyphs from any script;
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
from typoguard.core.models import ModelContext, Target, TypoModel, select_models
from typoguard.core.names import Domain
from typoguard.core.verdict import Finding

# How much a combined slip keeps of its label-slip prior when the suffix differs too.
SUFFIX_TYPO_FACTOR = 0.9
SUFFIX_SWAP_FACTOR = 0.6
# Priors of matches the models do not precompute (see docs/scoring.md).
PRIOR_UNREAL_SUFFIX_TYPO = 0.9  # army.mi: one edit from .mil but no such suffix (bounces; still a slip)
PRIOR_FUZZY_ONE = 0.55  # one arbitrary edit not explained by a keyboard or visual model
PRIOR_FUZZY_TWO = 0.42  # two edits, long names only
FUZZY_TWO_MIN_LEN = 8  # cores shorter than this get no two-edit fuzzy matches
FUZZY_ONE_MIN_LEN = 4
# A look-alike whose name is itself a common word (life.com for live.com) was more likely chosen than typed.
COMMON_WORD_FACTOR = 0.6


# Models whose edits of a short name often land on someone else's real name.
DAMPED_FOR_SHORT_NAMES = frozenset(
    {
        "omission",
        "insertion",
        "replacement",
        "transposition",
        "repetition",
        "vowel_swap",
        "bitsquat",
        "ascii_lookalike",
    }
)


def length_factor(core: str) -> float:
    """Edits of short names land on unrelated real names more often; damp their score.

    The main label of ``ca.ibm`` is ``ibm`` (3 letters): ``ibn.com`` is far more likely someone else's
    domain than ``gmaul.com`` is.
    """
    n = len(core.rsplit(".", 1)[-1])
    return {1: 0.5, 2: 0.6, 3: 0.7, 4: 0.93}.get(n, 1.0)


@dataclass(frozen=True, slots=True)
class Protected:
    """A compiled protected domain."""

    domain: str
    core: str
    suffix: str
    unicode: str
    registrable: str
    weight: float


def describe_change(typed: str, intended: str, what: str) -> str:
    """A short phrase for the difference between two strings: "the i of .mil dropped"."""
    p = 0
    while p < min(len(typed), len(intended)) and typed[p] == intended[p]:
        p += 1
    q = 0
    while q < min(len(typed), len(intended)) - p and typed[-1 - q] == intended[-1 - q]:
        q += 1
    t_mid, i_mid = typed[p : len(typed) - q], intended[p : len(intended) - q]
    if not t_mid and len(i_mid) == 1:
        return f"the {_ch(i_mid)} of {what} dropped"
    if not i_mid and len(t_mid) == 1:
        before = intended[p - 1] if p > 0 else ""
        if t_mid == before or (len(intended) > p and t_mid == intended[p]):
            return f"the {_ch(t_mid)} of {what} doubled"
        return f"an extra {_ch(t_mid)} in {what}"
    if len(t_mid) == 2 and t_mid == i_mid[::-1]:
        return f"{_ch(i_mid)} of {what} swapped"
    if t_mid and i_mid:
        return f"{_ch(i_mid)} of {what} typed as {_ch(t_mid)}"
    return f"{what} changed"


def _ch(s: str) -> str:
    return {".": "dot", "-": "hyphen"}.get(s, f"'{s}'") if len(s) == 1 else f"'{s}'"


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
        self._max_core = 0
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
            seen[d.ascii] = Protected(
                d.ascii, core, suffix, d.unicode, registrable, weights.get(d.ascii, 1.0)
            )
        return cls(list(seen.values()), select_models(models), ctx, skeletons, common_words)

    def _build(self) -> None:
        exact: dict[str, list[int]] = {}
        variants = self._core_variants
        kind_index = {k: i for i, k in enumerate(self._kinds)}
        for pidx, p in enumerate(self._protected):
            exact.setdefault(p.core, []).append(pidx)
            target = Target(p.domain, p.core, p.suffix)
            for model in self._models:
                if not model.indexed:
                    continue
                kidx = kind_index[model.name]
                for v in model.variants(target, self._ctx):
                    packed = (pidx << 6) | (kidx << 1) | (v.suffix is None)
                    old = variants.get(v.core)
                    if old is None:
                        variants[v.core] = packed
                    else:
                        variants[v.core] = self._merge(old, packed)
        self._core_exact = {k: tuple(v) for k, v in exact.items()}
        sk_full: dict[str, list[int]] = {}
        sk_core: dict[str, list[int]] = {}
        deletes: dict[str, list[int]] = {}
        for pidx, p in enumerate(self._protected):
            sk_full.setdefault(self._skeletons.of(p.unicode), []).append(pidx)
            ucore = (
                p.unicode[: len(p.unicode) - len(p.suffix) - 1] if p.unicode.endswith(p.suffix) else p.core
            )
            sk_core.setdefault(self._skeletons.of(ucore), []).append(pidx)
            if len(p.core) >= FUZZY_ONE_MIN_LEN:
                depth = 2 if len(p.core) >= FUZZY_TWO_MIN_LEN else 1
                for d in _deletes(p.core, depth):
                    lst = deletes.setdefault(d, [])
                    if not lst or lst[-1] != pidx:
                        lst.append(pidx)
        self._skeleton_full = {k: tuple(v) for k, v in sk_full.items()}
        self._skeleton_core = {k: tuple(v) for k, v in sk_core.items()}
        self._deletes = {k: tuple(v) for k, v in deletes.items()}
        self._max_core = max((len(p.core) for p in self._protected), default=0)

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
        name = domain.ascii
        if self.is_protected(name):
            return []
        qcore, qsuffix = self._suffixes.split(name)
        found: dict[int, Finding] = {}
        if qcore:
            self._probe_exact(name, qcore, qsuffix, found)
            self._probe_variants(name, qcore, qsuffix, found)
        self._probe_skeletons(domain, qcore, qsuffix, found)
        if not found and qcore:
            self._probe_fuzzy(name, qcore, qsuffix, found)
        return sorted(found.values(), key=lambda f: (-f.score, f.intended or ""))

    def _keep(self, found: dict[int, Finding], pidx: int, finding: Finding) -> None:
        old = found.get(pidx)
        if old is None or finding.score > old.score:
            found[pidx] = finding

    def _suffix_relation(self, qsuffix: str, p: Protected) -> str:
        if qsuffix == p.suffix:
            return "same"
        if qsuffix in self._suffixes.one_edit_suffixes(p.suffix):
            return "typo"
        if not self._suffixes.is_known(qsuffix) and OSA.distance(qsuffix, p.suffix) == 1:
            return "unreal_typo"
        return "other"

    def _probe_exact(self, name: str, qcore: str, qsuffix: str, found: dict[int, Finding]) -> None:
        for pidx in self._core_exact.get(qcore, ()):
            p = self._protected[pidx]
            rel = self._suffix_relation(qsuffix, p)
            change = describe_change(qsuffix, p.suffix, "." + p.suffix)
            if rel == "typo":
                kind, prior, why = "suffix_typo", self._prior("suffix_typo"), change
            elif rel == "unreal_typo":
                kind, prior = "suffix_typo", PRIOR_UNREAL_SUFFIX_TYPO
                why = f"{change} (.{qsuffix} is no real suffix: such mail bounces)"
            else:
                kind, prior = "suffix_swap", self._prior("suffix_swap")
                why = f"the suffix .{qsuffix} in place of .{p.suffix}"
            self._keep(
                found,
                pidx,
                Finding(
                    name, p.domain, kind, _clip(prior * p.weight), f"{name} looks like {p.domain} with {why}"
                ),
            )

    def _probe_variants(self, name: str, qcore: str, qsuffix: str, found: dict[int, Finding]) -> None:
        entry = self._core_variants.get(qcore)
        if entry is None:
            return
        for packed in (entry,) if isinstance(entry, int) else entry:
            p = self._protected[packed >> 6]
            kidx = (packed >> 1) & 31
            kind, prior = self._kinds[kidx], self._priors[kidx]
            if packed & 1:  # any suffix: armymil.com, army.mil.com
                if kind == "suffix_append":
                    why = f"'.{qsuffix}' appended"
                else:
                    why = f"the dot before '{p.suffix}' dropped and '.{qsuffix}' added"
                score = prior
            else:
                why = describe_change(qcore, p.core, p.core)
                score = prior * length_factor(p.core) if kind in DAMPED_FOR_SHORT_NAMES else prior
                rel = self._suffix_relation(qsuffix, p)
                if rel in ("typo", "unreal_typo"):
                    kind, score = f"{kind}+suffix_typo", score * SUFFIX_TYPO_FACTOR
                    why += f", and {describe_change(qsuffix, p.suffix, '.' + p.suffix)}"
                elif rel == "other":
                    kind, score = f"{kind}+suffix_swap", score * SUFFIX_SWAP_FACTOR
                    why += f", under .{qsuffix} instead of .{p.suffix}"
                score, why = self._word_damping(qcore, p.core, score, why)
            self._keep(
                found,
                packed >> 6,
                Finding(
                    name, p.domain, kind, _clip(score * p.weight), f"{name} looks like {p.domain} with {why}"
                ),
            )

    def _probe_skeletons(self, domain: Domain, qcore: str, qsuffix: str, found: dict[int, Finding]) -> None:
        sk = self._skeletons.of(domain.unicode)
        hits = self._skeleton_full.get(sk, ())
        # An all-ASCII name that shares a skeleton is an ASCII look-alike (rn/m, 0/o), not another script.
        glyph_kind = "ascii_lookalike" if domain.unicode.isascii() else "homoglyph"
        for pidx in hits:
            p = self._protected[pidx]
            if p.domain != domain.ascii:
                why = _glyph_note(domain.unicode, p.unicode)
                self._keep(
                    found,
                    pidx,
                    Finding(
                        domain.ascii,
                        p.domain,
                        glyph_kind,
                        _clip(self._prior(glyph_kind) * p.weight),
                        f"{domain.unicode} looks like {p.domain}: {why}",
                    ),
                )
        if hits or not qcore:
            return
        ucore = domain.unicode.rsplit(".", qsuffix.count(".") + 1)[0]
        for pidx in self._skeleton_core.get(self._skeletons.of(ucore), ()):
            p = self._protected[pidx]
            if pidx in found:
                continue
            rel = self._suffix_relation(qsuffix, p)
            factor = {"same": 1.0, "typo": SUFFIX_TYPO_FACTOR, "unreal_typo": SUFFIX_TYPO_FACTOR}.get(
                rel, SUFFIX_SWAP_FACTOR
            )
            kind = (
                glyph_kind
                if rel == "same"
                else (
                    f"{glyph_kind}+suffix_typo"
                    if factor == SUFFIX_TYPO_FACTOR
                    else f"{glyph_kind}+suffix_swap"
                )
            )
            if rel == "same" and ucore == p.core:
                continue
            why = _glyph_note(ucore, p.core)
            self._keep(
                found,
                pidx,
                Finding(
                    domain.ascii,
                    p.domain,
                    kind,
                    _clip(self._prior(glyph_kind) * factor * p.weight),
                    f"{domain.unicode} looks like {p.domain}: {why}",
                ),
            )

    def _probe_fuzzy(self, name: str, qcore: str, qsuffix: str, found: dict[int, Finding]) -> None:
        if not FUZZY_ONE_MIN_LEN - 1 <= len(qcore) <= self._max_core + 2:
            return
        candidates: set[int] = set()
        for d in _deletes(qcore, 2 if len(qcore) >= FUZZY_TWO_MIN_LEN - 2 else 1):
            candidates.update(self._deletes.get(d, ()))
        for pidx in candidates:
            p = self._protected[pidx]
            dist = OSA.distance(qcore, p.core, score_cutoff=2)
            if dist == 0 or dist > 2:
                continue
            if dist == 2 and len(p.core) < FUZZY_TWO_MIN_LEN:
                continue
            prior = PRIOR_FUZZY_ONE if dist == 1 else PRIOR_FUZZY_TWO
            kind = "edit" if dist == 1 else "two_edits"
            rel = self._suffix_relation(qsuffix, p)
            why = describe_change(qcore, p.core, p.core) if dist == 1 else f"two slips in {p.core}"
            if rel in ("typo", "unreal_typo"):
                prior *= SUFFIX_TYPO_FACTOR
                kind += "+suffix_typo"
            elif rel == "other":
                prior *= SUFFIX_SWAP_FACTOR
                kind += "+suffix_swap"
                why += f", under .{qsuffix} instead of .{p.suffix}"
            prior, why = self._word_damping(qcore, p.core, prior, why)
            self._keep(
                found,
                pidx,
                Finding(
                    name,
                    p.domain,
                    kind,
                    _clip(prior * p.weight * length_factor(p.core)),
                    f"{name} looks like {p.domain} with {why}",
                ),
            )

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
            from typoguard.core.models import REGISTRY

            return REGISTRY[kind].prior

    # ------------------------------------------------------------------ generation
    def variants_of(self, domain: Domain) -> Iterator[tuple[str, str, float]]:
        """(look-alike domain, kind, score) for one domain, as the models generate them, best first."""
        core, suffix = self._suffixes.split(domain.ascii)
        if not core:
            return iter(())
        target = Target(domain.ascii, core, suffix)
        best: dict[str, tuple[str, float]] = {}
        lf = length_factor(core)
        for model in self._models:
            for v in model.variants(target, self._ctx):
                suffixes = [v.suffix] if v.suffix is not None else ["com", "net", "org"]
                for s in suffixes:
                    name = f"{v.core}.{s}"
                    if name == domain.ascii or len(name) > 253:
                        continue
                    free = v.suffix is None or v.core == core
                    score = model.prior if free else model.prior * lf
                    if name not in best or best[name][1] < score:
                        best[name] = (model.name, score)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][1], kv[0]))
        return ((name, kind, round(score, 4)) for name, (kind, score) in ranked)


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


def _glyph_note(typed: str, intended: str) -> str:
    import unicodedata

    odd = [ch for ch in typed if not ch.isascii()]
    if not odd:
        return "characters that look alike (e.g. 'rn' for 'm', '0' for 'o')"
    shown = ", ".join(f"'{ch}' ({unicodedata.name(ch, f'U+{ord(ch):04X}').lower()})" for ch in odd[:3])
    return f"look-alike characters {shown} in place of {intended}'s own"
