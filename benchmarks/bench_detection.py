"""Detection speed: in-process checks/s (hot and cold), the CLI end to end, compiling, variant generation.

Every number comes with a baseline measured in the same run (a bare ``dict.get`` loop, a mailcheck-like
rapidfuzz suggester, ``cat``, dnstwist), so the ratios carry over between machines better than the raw
numbers do. All inputs are generated deterministically (fixed seeds): 1,000 protected domains made of
pronounceable names under real suffixes (.com .net .org .mil .gov .edu .co.uk .de .fr .com.au .ca, and
``xx.name.com`` organisation subdomains like ca.ibm.com); a mail stream that is 70% legitimate recipients
(a pool of real provider domains and synthetic company domains, drawn with Zipf-like repetition) and 30%
look-alikes (``index.variants_of`` of random protected domains).

Run with ``python -m benchmarks --only detection``. About a minute on a laptop; bounded well under three.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typoguard import resources
from typoguard.config import Config, ProtectConfig
from typoguard.core.names import normalise_domain
from typoguard.guard import Guard

SEED = 20260127
N_PROTECTED = 1_000
N_COMPILE = 10_000
N_STREAM = 1_000_000  # in-process, hot cache
N_COLD = 30_000  # in-process, every domain distinct
N_CLI = 500_000
N_VARIANT_DOMAINS = 100
LEGIT_SHARE = 0.70
LEGIT_POOL = 50_000
ZIPF_S = 1.1


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ONSETS = _words("b c d f g h j k l m n p r s t v w z br cr dr fr gr pr tr st sh ch th bl cl fl gl pl sl sp")
VOWELS = _words("a e i o u a e i o ai ea io ou")
CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "x", "ck", "nd", "rt")
WORDS = _words("tech labs bank health group mail net data soft works systems energy care media air line")
SUFFIXES = (
    ("com", 40),
    ("net", 8),
    ("org", 7),
    ("mil", 8),
    ("gov", 8),
    ("edu", 4),
    ("co.uk", 7),
    ("de", 4),
    ("fr", 3),
    ("com.au", 3),
    ("ca", 3),
)
FIRST = _words("alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil")
LAST = _words("smith jones brown taylor wilson davies evans thomas johnson roberts walker wright")


# ----------------------------------------------------------------------------- inputs
def pronounceable(rng: random.Random) -> str:
    """A made-up but plausible organisation name: 2-3 syllables, sometimes with a trade word."""
    syllables = rng.choice((2, 2, 3))
    name = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables))
    if rng.random() < 0.15:
        name += rng.choice(("", "-")) + rng.choice(WORDS)
    return name


def protected_domains(n: int, seed: int = SEED) -> list[str]:
    """``n`` distinct protected domains, deterministic for a seed."""
    rng = random.Random(seed)
    names, weights = zip(*SUFFIXES, strict=True)
    out: dict[str, None] = {}
    while len(out) < n:
        name = pronounceable(rng)
        suffix = rng.choices(names, weights)[0]
        if rng.random() < 0.04:  # an organisation's country subdomain, like ca.ibm.com
            out[f"{rng.choice(('ca', 'uk', 'de', 'us', 'fr', 'jp'))}.{name}.com"] = None
        else:
            out[f"{name}.{suffix}"] = None
    return list(out)


def legitimate_pool(protected: Sequence[str], size: int, seed: int = SEED + 1) -> list[str]:
    """Distinct legitimate recipient domains, most frequent first: real providers, then synthetic firms."""
    rng = random.Random(seed)
    head = ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "aol.com", "gmx.de"]
    rest = sorted(resources.legitimate_domains() - set(head))
    rng.shuffle(rest)
    head += rest
    taken = set(protected) | set(head)
    tail: list[str] = []
    names, weights = zip(*SUFFIXES, strict=True)
    while len(head) + len(tail) < size:
        d = f"{pronounceable(rng)}.{rng.choices(names, weights)[0]}"
        if d not in taken:
            taken.add(d)
            tail.append(d)
    # interleave so the Zipf head holds both big providers and busy business partners
    return head[:20] + [d for pair in itertools.zip_longest(tail, head[20:]) for d in pair if d][: size - 20]


def lookalike_pool(guard: Guard, protected: Sequence[str], n: int, seed: int = SEED + 2) -> list[str]:
    """``n`` look-alikes: random variants (``index.variants_of``) of random protected domains."""
    rng = random.Random(seed)
    out: list[str] = []
    for domain in rng.sample(list(protected), min(len(protected), max(1, n // 10))):
        variants = [v for v, _kind, _score in guard.index.variants_of(normalise_domain(domain))]
        out.extend(rng.sample(variants, min(10, len(variants))))
    rng.shuffle(out)
    return out[:n]


def local_part(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return rng.choice((f"{first}.{last}", f"{first}{rng.randrange(100)}", first, f"{first[0]}{last}"))


def mail_stream(legit: Sequence[str], lookalikes: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` recipients: LEGIT_SHARE from ``legit`` with Zipf-like repetition, the rest look-alikes."""
    rng = random.Random(seed)
    cum = list(itertools.accumulate(1.0 / (r**ZIPF_S) for r in range(1, len(legit) + 1)))
    n_legit = int(n * LEGIT_SHARE)
    domains = rng.choices(legit, cum_weights=cum, k=n_legit)
    domains += rng.choices(lookalikes, k=n - n_legit)
    rng.shuffle(domains)
    locals_ = [local_part(rng) for _ in range(4096)]
    return [f"{locals_[i & 4095]}@{d}" for i, d in enumerate(domains)]


# ----------------------------------------------------------------------------- measuring
@contextmanager
def one_core() -> Iterator[int]:
    """Pin this process to one CPU (the last usable one) for the block; restore afterwards."""
    before = os.sched_getaffinity(0)
    cpu = max(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def best_rate(fn: Callable[[], int], repeats: int = 3) -> float:
    """Items per second of ``fn`` (which returns how many items it did), best of ``repeats``."""
    best = 0.0
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        done = fn()
        best = max(best, done / (time.perf_counter() - t0))
    return best


@dataclass
class Row:
    what: str
    measured: str
    target: str
    met: str


def _rate(x: float) -> str:
    return f"{x:,.0f}/s"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else "yes" if ok else "NO"


def print_table(rows: Sequence[Row]) -> None:
    heads = ("what", "measured", "target", "met?")
    cols = [
        [r.what for r in rows],
        [r.measured for r in rows],
        [r.target for r in rows],
        [r.met for r in rows],
    ]
    widths = [max(len(h), *(len(c) for c in col)) for h, col in zip(heads, cols, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        cells = (r.what, r.measured, r.target, r.met)
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)), flush=True)


# ----------------------------------------------------------------------------- the benchmarks
def bench_in_process(
    guard: Guard,
    stream: Sequence[str],
    cold: Sequence[str],
    popular: Sequence[str],
    lookalikes: frozenset[str],
) -> list[Row]:
    check = guard.check
    addresses = list(stream)

    def typoguard_hot() -> int:
        for r in addresses:
            check(r)
        return len(addresses)

    table = {r[r.rfind("@") + 1 :]: r for r in addresses}
    get = table.get

    def dict_get() -> int:
        for r in addresses:
            get(r[r.rfind("@") + 1 :])
        return len(addresses)

    def typoguard_cold() -> int:
        guard.detector.clear_cache()
        for r in cold:
            check(r)
        return len(cold)

    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    def mailcheck_like() -> int:  # mailcheck.js: best of a short list by edit distance, no cache
        for r in cold:
            process.extractOne(r[r.rfind("@") + 1 :], popular, scorer=Levenshtein.distance, score_cutoff=2)
        return len(cold)

    with one_core() as cpu:
        typoguard_hot()  # warm the cache: the hot number is the steady state of a mail stream
        hot = best_rate(typoguard_hot)
        base = best_rate(dict_get)
        cold_rate = best_rate(typoguard_cold, repeats=2)
        mailcheck = best_rate(mailcheck_like, repeats=2)
    sample = addresses[:100_000]
    is_lookalike = [r[r.rfind("@") + 1 :] in lookalikes for r in sample]
    flagged = [check(r).flagged for r in sample]
    n_look = sum(is_lookalike)
    caught = sum(f for f, look in zip(flagged, is_lookalike, strict=True) if look) / max(1, n_look)
    false = sum(f for f, look in zip(flagged, is_lookalike, strict=True) if not look) / max(
        1, len(sample) - n_look
    )
    return [
        Row(f"check, hot cache, 1 core (cpu {cpu})", _rate(hot), ">= 500,000/s", _met(hot >= 500_000)),
        Row("  baseline: bare dict.get on the domain", _rate(base), "", ""),
        Row("  ratio typoguard / dict.get", f"{hot / base:.2f}x", "", ""),
        Row("check, cold (every domain distinct)", _rate(cold_rate), "-", _met(None)),
        Row("  baseline: mailcheck-like rapidfuzz, 30 domains", _rate(mailcheck), "", ""),
        Row("  ratio typoguard / mailcheck-like", f"{cold_rate / mailcheck:.2f}x", "", ""),
        Row("  (look-alikes flagged / legitimate flagged)", f"{caught:.1%} / {false:.2%}", "", ""),
    ]


def bench_cli(protect_file: Path, stream: Sequence[str], tmp: Path) -> list[Row]:
    recipients = tmp / "recipients.txt"
    recipients.write_text("\n".join(stream) + "\n", "utf-8")
    exe = str(Path(sys.executable).with_name("typoguard"))

    empty = tmp / "empty.txt"
    empty.write_bytes(b"")

    def run(cmd: list[str], source: Path = recipients) -> tuple[float, int]:
        with source.open("rb") as stdin:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE)
            out = proc.stdout
            assert out is not None
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: out.read(1 << 20), b""))
            out.close()
            proc.wait()
            return time.perf_counter() - t0, lines

    cmd = [exe, "check", "--format", "json", "--protect-file", str(protect_file), "-"]
    start_secs = min(run(cmd, empty)[0] for _ in range(2))
    (secs, lines), _ = sorted(run(cmd) for _ in range(2))  # best of two: the machine may be shared
    cat_secs, cat_lines = min(run(["cat"]) for _ in range(2))
    if lines != len(stream) or cat_lines != len(stream):
        raise RuntimeError(f"expected {len(stream)} lines, got {lines} (typoguard) and {cat_lines} (cat)")
    rate, cat_rate = len(stream) / secs, len(stream) / cat_secs
    return [
        Row(
            f"CLI check --format json -, {len(stream):,} rcpts",
            _rate(rate),
            ">= 100,000/s",
            _met(rate >= 100_000),
        ),
        Row("  (wall time, incl. start-up and compile)", f"{secs:.2f} s", "", ""),
        Row("  (start-up and compile alone: empty input)", f"{start_secs:.2f} s", "", ""),
        Row("  (rate after start-up)", _rate(len(stream) / max(1e-9, secs - start_secs)), "", ""),
        Row("  baseline: cat of the same file", _rate(cat_rate), "", ""),
        Row("  ratio typoguard / cat", f"{rate / cat_rate:.4f}x", "", ""),
    ]


_COMPILE_CHILD = """
import json, sys
from pathlib import Path
from typoguard.config import Config, ProtectConfig
from typoguard.guard import Guard
g = Guard.from_config(Config(protect=ProtectConfig(files=(sys.argv[1],))))
print(json.dumps({"seconds": g.compile_seconds, "protected": len(g.index.protected), "keys": len(g.index)}))
"""


def bench_compile(protect_file: Path, n: int) -> list[Row]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _COMPILE_CHILD, str(protect_file)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not every child's maximum
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"compile child failed with exit code {proc.returncode}")
    info = json.loads(out)
    rss_gib = usage.ru_maxrss * 1024 / 2**30  # ru_maxrss is in KiB on Linux
    return [
        Row(
            f"compile {n:,} protected domains",
            f"{info['seconds']:.2f} s",
            "<= 20 s",
            _met(info["seconds"] <= 20),
        ),
        Row(
            "  peak RSS of the compiling process",
            f"{rss_gib:.2f} GiB",
            "<= 1.5 GB",
            _met(rss_gib * 2**30 <= 1.5e9),
        ),
        Row("  (index keys / child wall time)", f"{info['keys']:,} / {wall:.1f} s", "", ""),
    ]


def bench_variants(guard: Guard, domains: Sequence[str]) -> list[Row]:
    import dnstwist

    parsed = [normalise_domain(d) for d in domains]
    counts = {"typoguard": 0, "dnstwist": 0}

    def typoguard_variants() -> int:
        counts["typoguard"] = sum(sum(1 for _ in guard.index.variants_of(d)) for d in parsed)
        return len(parsed)

    def dnstwist_variants() -> int:
        total = 0
        for d in domains:
            fuzzer = dnstwist.Fuzzer(d)
            fuzzer.generate()
            total += len(fuzzer.domains)
        counts["dnstwist"] = total
        return len(domains)

    with one_core():
        ours = best_rate(typoguard_variants, repeats=2)
        theirs = best_rate(dnstwist_variants, repeats=1)
    return [
        Row(f"variants of {len(domains)} domains: typoguard", f"{ours:,.1f} domains/s", "-", _met(None)),
        Row("  baseline: dnstwist Fuzzer.generate()", f"{theirs:,.1f} domains/s", "", ""),
        Row("  ratio typoguard / dnstwist", f"{ours / theirs:.2f}x", "", ""),
        Row(
            "  (variants: typoguard / dnstwist)", f"{counts['typoguard']:,} / {counts['dnstwist']:,}", "", ""
        ),
    ]


def main() -> None:
    started = time.perf_counter()
    protected = protected_domains(N_PROTECTED)
    with tempfile.TemporaryDirectory(prefix="typoguard-bench-") as tmpdir:
        tmp = Path(tmpdir)
        protect_file = tmp / "protected.txt"
        protect_file.write_text("\n".join(protected) + "\n", "utf-8")
        guard = Guard.from_config(Config(protect=ProtectConfig(files=(str(protect_file),))))
        legit = legitimate_pool(protected, LEGIT_POOL)
        lookalikes = lookalike_pool(guard, protected, 5_000)
        stream = mail_stream(legit, lookalikes, N_STREAM, SEED + 3)
        # cold: every domain distinct (the legit ones from the pool, the look-alikes fresh)
        cold_rng = random.Random(SEED + 4)
        n_cold_legit = int(N_COLD * LEGIT_SHARE)
        cold_domains = cold_rng.sample(legit, n_cold_legit) + lookalike_pool(
            guard, protected, N_COLD - n_cold_legit, SEED + 5
        )
        cold_domains = list(dict.fromkeys(cold_domains))
        cold_rng.shuffle(cold_domains)
        cold = [f"{local_part(cold_rng)}@{d}" for d in cold_domains]
        print(
            f"inputs: {len(protected):,} protected, {len(legit):,} legit domains (Zipf s={ZIPF_S}), "
            f"{len(lookalikes):,} look-alikes; stream {len(stream):,} ({len(set(stream)):,} distinct "
            f"addresses), cold {len(cold):,} distinct domains; "
            f"built in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        rows = bench_in_process(guard, stream, cold, legit[:30], frozenset(lookalikes))
        rows += bench_cli(protect_file, mail_stream(legit, lookalikes, N_CLI, SEED + 6), tmp)
        big_file = tmp / "protected-10k.txt"
        big_file.write_text("\n".join(protected_domains(N_COMPILE, SEED + 7)) + "\n", "utf-8")
        rows += bench_compile(big_file, N_COMPILE)
        rows += bench_variants(guard, random.Random(SEED + 8).sample(protected, N_VARIANT_DOMAINS))
    print()
    print_table(rows)
    print(f"\n(bench_detection took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
