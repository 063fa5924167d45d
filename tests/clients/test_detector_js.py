"""The JavaScript detector (clients/detector) against ``typoguard check --format json -``: the contract.

One batch of inputs goes through both, as subprocesses, exactly as a script would run them: the eval-style
inputs the suite already has (every dnstwist variant of the protected domains, typoguard's own variants of
them, the shipped legitimate-domain list, the golden cases of tests/test_cli.py, tests/core/test_detector.py
and tests/core/test_index.py, random strings, IDN and malformed input, raw invalid UTF-8). The JavaScript
answer must equal the server's on action and intended domain for >= 99.9% of inputs and on every golden
case; every disagreement is printed. Agreement on every field (reason, kind, score, error) is printed too.

Two configurations: the golden one (the nine domains of tests/conftest.py, defaults), and a configuration
file that changes what a bundle must carry (trusted domains, weights, thresholds, a model subset, an IDN
and a multi-label-suffix protected domain, no word list); and 100 protected domains (the fuzzy stages'
deletion tables).
"""

from __future__ import annotations

import ast
import json
import random
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rapidfuzz.distance import OSA

from typoguard import resources
from typoguard.config import Config, ProtectConfig
from typoguard.core.names import normalise_domain
from typoguard.guard import Guard

dnstwist = pytest.importorskip("dnstwist")

TESTS = Path(__file__).resolve().parents[1]
GOLDEN_PROTECT: tuple[str, ...] = (
    "army.mil", "navy.mil", "us.af.mil", "state.gov", "ca.ibm.com", "gmail.com", "outlook.com",
    "comcast.net", "verizon.net",
)  # fmt: skip
OTHER_CONFIG = """\
[protect]
domains = ["paypal.com", "microsoft.com", "münchen.de", "hmrc.gov.uk", "army.mil", "bbc.co.uk", "gmx.net"]
trusted = ["paypal.de", "army.com"]
weights = { "microsoft.com" = 0.8, "army.mil" = 0.9 }
models = ["omission", "insertion", "replacement", "transposition", "repetition", "dot_omission",
          "dot_hyphen", "suffix_typo", "suffix_append", "ascii_lookalike"]
use_word_list = false

[policy]
reject_at = 0.85
hold_at = 0.6
warn_at = 0.3
"""
MIN_AGREEMENT = 0.999


# ============================================================================= inputs
def golden_inputs() -> list[str]:
    """The golden cases: GOLDEN of tests/test_cli.py and every recipient/typed parameter of the detector's
    and the index's tests (read from their source, so a case added there is checked here too)."""
    out: list[str] = []
    cli = ast.parse((TESTS / "test_cli.py").read_text("utf-8"))
    for node in ast.walk(cli):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "GOLDEN" for t in node.targets
        ):
            out += [row[0] for row in ast.literal_eval(node.value)]
    for name in ("core/test_detector.py", "core/test_index.py"):
        tree = ast.parse((TESTS / name).read_text("utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "parametrize"):
                continue
            try:
                names, values = ast.literal_eval(node.args[0]), ast.literal_eval(node.args[1])
            except ValueError:
                continue
            first = names if isinstance(names, str) else names[0]
            if first in ("recipient", "typed"):
                out += [v[0] if isinstance(v, tuple) else v for v in values]
    assert len(out) > 60, "the golden cases were not found where this test looks for them"
    return out


def dnstwist_variants(domains: Sequence[str]) -> list[str]:
    out = []
    for domain in domains:
        fuzzer = dnstwist.Fuzzer(domain)
        fuzzer.generate()
        out += sorted(p["domain"] for p in fuzzer.domains)
    return out


def own_variants(guard: Guard, only: Sequence[str] | None = None) -> list[str]:
    """Every look-alike typoguard's models make of each protected domain (all kinds, all suffix forms), or
    of the protected domains ``only`` names."""
    return [
        name
        for p in guard.index.protected
        if only is None or p.domain in only
        for name, _, _ in guard.index.variants_of(normalise_domain(p.domain))
    ]


def near_words(guard: Guard) -> list[str]:
    """Common words within two edits of a protected name, under its suffix and .com: the damping cases."""
    words = sorted(resources.common_words())
    out = []
    for p in guard.index.protected:
        label = p.core.rsplit(".", 1)[-1]
        for w in words:
            if abs(len(w) - len(label)) <= 2 and OSA.distance(w, label, score_cutoff=2) <= 2:
                out += [f"{w}.{p.suffix}", f"{w}.com"]
    return out


HANDPICKED = [
    # hosts under a look-alike: judged as the look-alike, meant for the same host under the protected name
    "bob@us.army.ml", "mail.army.ml", "bob@smtp.gmial.com", "a.b.caibm.com", "bob@us.аrmy.mil",
    "x.y.xn--rmy-5cd.mil", "bob@us.army.com", "bob@mail.google.com", "bob@us.army.mil", "x@mail.ca.ibm.co",
    "a.army.mil.com", "a.b.c.d.e.f.army.ml", "a" * 63 + ".b.army.ml",
    # A name typed as its A-label first, then with the character UTS #46 maps away: the second verdict
    # depends on the first (the server's cache keys both by A-label); the client must answer as it does.
    "xn--gmail-1ha.com", "gm\u00adail.com", "ar\u00admy.mil", "xn--army-rga.mil",
    # homoglyphs, mapped and folded characters, mixed scripts
    "bob@аrmy.mil", "xn--rmy-5cd.mil", "XN--RMY-5CD.MIL", "gⅿail.com", "bob@gⅿail.com", "ＡＲＭＹ．ｍｉｌ",
    "army。mil", "army．ml", "bob@аrmу.mil", "bob@aгmy.mil", "gmаil.com", "ɡmail.com", "ｇｍａｉｌ．ｃｏｍ",
    "𝐠𝐦𝐚𝐢𝐥.com", "gmail.com\u200d", "g\u200dmail.com", "gmai\u0301l.com", "ġmail.com", "gmaіl.com",
    "outlооk.com", "0utlook.com", "outl00k.com", "rnicrosoft.com", "paypa1.com", "paypaI.com", "ρaypal.com",
    "pаypаl.com", "xn--pypal-4ve.com", "bob@ａrmy.mil", "bob@army\uff0emil", "ё.com",
    "bob@xn--80ak6aa92e.com",
    # internationalised names, protected or not
    "bob@münchen.de", "bob@xn--mnchen-3ya.de", "bob@mûnchen.de", "bob@munchen.de", "münchen.de.com",
    "müchen.de", "muenchen.de", "münchen.at", "bob@xn--o38h.abrdns.com", "bob@\U0001f62d.abrdns.com",
    "bob@яндекс.рф", "bob@例え.jp", "bob@한국.kr", "مثال.إختبار",
    # malformed
    "bob@ex\u202eample.com", "bob@[192.0.2.1]", "bob@[IPv6:2001:db8::1]", "<bob@army.mil>", "< bob@army.ml >",
    '"j doe"@army.ml', '"unterminated@army.ml', "bob@@army.mil", "bob@army..mil", ".army.mil", "army.mil.",
    "army.mil..", "@army.mil", "bob@", "bob", "army", "-army.mil", "army-.mil", "a_b.mil", "bob@xn--zz.com",
    "xn--a.com", "xn--.com", "xn---.com", "a" * 64 + ".mil",
    "bob@" + ".".join(["a" * 60] * 4) + ".abcdef.com",
    "x" * 65 + "@army.mil", "a@" + "b" * 300 + ".com", "army.mil\x00", "bob@army.mil\t", "\tbob@army.ml",
    "bob@army.ml\u3000", "bob@arm y.mil", "bob @army.mil", "1.2.3.4", "123.45", "army.123", "bob@localhost",
    "\ufeffarmy.ml", "bob.@army.ml", "b..b@army.ml", "bob@army.ml\r", "\\\\@army.ml", "b\\ob@army.ml",
    "'@army.ml",
    # suffixes and dots
    "bob@army.mil.com", "bob@armymil.com", "bob@army-mil.com", "bob@army.mi", "bob@army.m", "bob@arm.ymil",
    "navy.ml.", "us.af.ml", "us.af.mil.ml", "af.mil", "caibm.com", "ca-ibm.com", "ca.ibm.co", "cai.bm.com",
    "bbcco.uk", "bbc.co.uk.com", "bbc-co.uk", "hmrc.gov.uk.com", "hmrcgov.uk", "hmrc.gov.au", "hmrc.gov.u",
    "army.ck", "foo.ck", "www.ck", "city.kobe.jp", "army.kobe.jp", "bob@ARMY.ML", "Bob.Smith+tag@Army.Ml",
    # near neighbours: legitimate, trusted, common words, swaps
    "gmx.de", "gmx.com", "gmx.nett", "gmx.ne", "paypal.de", "paypal.co.uk", "sub.paypal.de", "www.paypal.com",
    "micros0ft.com", "mircosoft.com", "life.com", "live.com", "bob@ymail.com", "bob@mail.com", "gouv.ml",
    "sante.gouv.ml", "verizon.com", "comcast.com", "comcawst.com", "comcawst.net", "yafoo.net", "gmial.net",
    "amry.ml",
]  # fmt: skip


def random_inputs(rng: random.Random, protected: Sequence[str], n: int = 3000) -> list[str | bytes]:
    """Random strings, random names and random slips of the protected names (ASCII and Unicode)."""
    pools = [
        "abcdefghijklmnopqrstuvwxyz0123456789-.",
        "аеорсхуіјһԁԛԝѕкмтвп",  # Cyrillic that reads as Latin
        "αοερτυνκιρχ",
        "ａｂｃｍｌｏ０１",
        "àáâãäåèéêëìíîïòóôõöùúûüýÿçñ",
        "\u0301\u0308\u200d\u200c\u00ad\u200b\ufe0f",
        "😀🎉ⅿⓜ𝐦ᴍʀɪ",
        "例え한국ابجדהו",
        "。．｡@<>\"[]_ +!#$%&'*/=?^`{|}~\\",
    ]
    out: list[str | bytes] = []
    for _ in range(n // 6):
        out.append("".join(rng.choice(pools[0] + pools[8]) for _ in range(rng.randint(0, 30))))
    for _ in range(n // 6):
        labels = [
            "".join(rng.choice(pools[0][:37]) for _ in range(rng.randint(1, 12)))
            for _ in range(rng.randint(1, 3))
        ]
        tld = rng.choice(
            ["com", "net", "org", "mil", "ml", "co", "cm", "de", "uk", "co.uk", "xyz", "zz", "q"]
        )
        out.append(("bob@" if rng.random() < 0.5 else "") + ".".join([*labels, tld]))
    for _ in range(n // 6):
        pool = "".join(rng.sample(pools, 3))
        label = "".join(rng.choice(pool) for _ in range(rng.randint(1, 10)))
        out.append(f"{label}.{rng.choice(['com', 'mil', 'de', 'рф', 'ml'])}")
    for _ in range(n // 6):
        out.append(bytes(rng.randint(1, 255) for _ in range(rng.randint(1, 20))).replace(b"\n", b""))
    for _ in range(n // 3):
        chars = list(rng.choice(protected))
        for _ in range(rng.choice([1, 1, 2, 3])):
            pool = rng.choice(pools[:7])
            i = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.4:
                chars[i] = rng.choice(pool)
            elif op < 0.7:
                chars.insert(i, rng.choice(pool))
            elif op < 0.9 and len(chars) > 3:
                del chars[i]
            elif i + 1 < len(chars):
                chars[i], chars[i + 1] = chars[i + 1], chars[i]
        out.append(("bob@" if rng.random() < 0.3 else "") + "".join(chars))
    return out


def homoglyph_inputs(protected: Sequence[str]) -> list[str]:
    """Each letter of each protected name replaced by each non-ASCII character confusable with it."""
    by_letter: dict[str, list[str]] = {}
    for src, proto in sorted(resources.confusable_table().items()):
        if len(proto) == 1 and proto.isascii() and proto.isalnum() and not src.isascii():
            by_letter.setdefault(proto.lower(), []).append(src)
    out = []
    for domain in protected:
        for i, ch in enumerate(domain):
            for glyph in by_letter.get(ch, [])[:6]:
                out.append(domain[:i] + glyph + domain[i + 1 :])
    return out


# ============================================================================= running both
@dataclass
class Comparison:
    lines: list[bytes]
    python: list[dict[str, Any]]
    js: list[dict[str, Any]]

    def agree(self, i: int) -> bool:
        p, j = self.python[i], self.js[i]
        return (p["action"], p["intended"]) == (j["action"], j["intended"])

    def disagreements(self) -> Iterator[int]:
        return (i for i in range(len(self.lines)) if not self.agree(i))


def as_line(item: str | bytes) -> bytes | None:
    raw = item if isinstance(item, bytes) else item.encode("utf-8", "surrogateescape")
    return None if b"\n" in raw else raw


@dataclass(frozen=True)
class Runners:
    node: str
    cli: Path
    typoguard: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def runners(node: str, detector_cli: Path, typoguard_exe: str, child_env: dict[str, str]) -> Runners:
    return Runners(node, detector_cli, typoguard_exe, child_env)


def run_both(r: Runners, bundle: Path, check_args: Sequence[str], items: Sequence[str | bytes]) -> Comparison:
    lines = list(dict.fromkeys(line for line in map(as_line, items) if line is not None))
    data = b"".join(line + b"\n" for line in lines)
    py = subprocess.run(
        [r.typoguard, "check", *check_args, "--format", "json", "-"],
        input=data, capture_output=True, env=r.env, timeout=300, check=False,
    )  # fmt: skip
    assert py.returncode in (0, 1) and py.stderr == b"", py.stderr.decode(errors="replace")
    js = subprocess.run(
        [r.node, str(r.cli), str(bundle)], input=data, capture_output=True, timeout=300, check=False
    )
    assert js.returncode == py.returncode and js.stderr == b"", js.stderr.decode(errors="replace")
    python = [json.loads(x) for x in py.stdout.decode("utf-8").splitlines()]
    javascript = [json.loads(x) for x in js.stdout.decode("utf-8").splitlines()]
    assert len(python) == len(javascript) == len(lines), "one object per input line, in order"
    for p, j in zip(python, javascript, strict=True):
        assert p["recipient"] == j["recipient"], (p, j)
        assert list(p) == list(j), "the same keys, in the same order"
    return Comparison(lines, python, javascript)


def report(name: str, c: Comparison, golden: set[bytes]) -> None:
    """Print the figures and every disagreement (pytest shows them with -s, or when the test fails)."""
    n = len(c.lines)
    bad = list(c.disagreements())
    fields = ["domain", "action", "intended", "kind", "score", "reason", "error"]
    print(f"\n[{name}] {n} inputs ({len(golden)} golden): action+intended agree on {n - len(bad)} "
          f"({100 * (n - len(bad)) / n:.3f}%)")  # fmt: skip
    for field in fields:
        same = sum(c.python[i].get(field) == c.js[i].get(field) for i in range(n))
        print(f"  {field:<8} equal on {same} ({100 * same / n:.3f}%)")
    every = sum(c.python[i] == c.js[i] for i in range(n))
    print(f"  all fields equal on {every} ({100 * every / n:.3f}%)")
    for i in bad:
        print(f"  DISAGREE {c.lines[i]!r}\n    python: {c.python[i]}\n    js:     {c.js[i]}")


def assert_contract(c: Comparison, golden: set[bytes]) -> None:
    bad = [c.lines[i] for i in c.disagreements()]
    golden_bad = [line for line in bad if line in golden]
    assert not golden_bad, f"golden cases where the JavaScript detector disagrees: {golden_bad}"
    agreement = 1 - len(bad) / len(c.lines)
    assert agreement >= MIN_AGREEMENT, f"agreement {agreement:.4%} < {MIN_AGREEMENT:.1%}: {bad[:50]}"


# ============================================================================= the tests
@pytest.fixture(scope="module")
def golden() -> list[str]:
    return golden_inputs()


def _corpus(guard: Guard, golden: list[str], seed: int, legit_share: int = 1) -> list[str | bytes]:
    protected = [p.domain for p in guard.index.protected]
    unicode_names = [p.unicode for p in guard.index.protected]
    legit = sorted(resources.legitimate_domains())[::legit_share]
    rng = random.Random(seed)
    items: list[str | bytes] = [*golden, *HANDPICKED]
    items += dnstwist_variants(protected)
    items += own_variants(guard)
    items += legit + [f"postmaster@{d}" for d in legit[::3]]
    items += near_words(guard)
    items += [f"mail.{x}" for x in items[len(golden) :: 13] if isinstance(x, str) and "@" not in x]  # hosts
    items += homoglyph_inputs(unicode_names)
    items += random_inputs(rng, unicode_names)
    items += [
        f"bob@{x}" if isinstance(x, str) and rng.random() < 0.2 else x for x in items[len(golden) :][::7]
    ]
    return thinned(items, len(golden) + len(HANDPICKED))


def thinned(items: list[str | bytes], keep: int, every: int = 2) -> list[str | bytes]:
    """The first ``keep`` items (the golden and hand-picked cases) and every ``every``-th one after them: the
    same kinds of input in the same proportions at a fraction of the suite's time (the full corpora,
    27,000 and 36,000 lines, agreed on every line when this was written)."""
    return items[:keep] + items[keep::every]


def test_js_detector_agrees_with_typoguard_check_on_the_golden_configuration(
    runners: Runners, export_bundle: Callable[[Sequence[str]], Path], guard: Guard, golden: list[str]
) -> None:
    assert tuple(p.domain for p in guard.index.protected) == GOLDEN_PROTECT
    args = [arg for d in GOLDEN_PROTECT for arg in ("--protect", d)]
    bundle = export_bundle(args)
    c = run_both(runners, bundle, args, _corpus(guard, golden, seed=20))
    golden_lines = {line for line in map(as_line, golden) if line is not None}
    report("golden configuration", c, golden_lines)
    assert_contract(c, golden_lines)


def test_js_detector_agrees_under_a_configuration_file(
    runners: Runners,
    export_bundle: Callable[[Sequence[str]], Path],
    golden: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    config = tmp_path_factory.mktemp("config") / "typoguard.toml"
    config.write_text(OTHER_CONFIG, "utf-8")
    from typoguard.config import load_config

    guard = Guard.from_config(load_config(config))
    bundle = export_bundle(["--config", str(config)])
    corpus = _corpus(guard, golden, seed=21, legit_share=2)
    c = run_both(runners, bundle, ["--config", str(config)], corpus)
    golden_lines = {line for line in map(as_line, golden) if line is not None}
    report("configuration file", c, golden_lines)
    assert_contract(c, golden_lines)


def test_js_detector_agrees_with_many_protected_domains(
    runners: Runners,
    export_bundle: Callable[[Sequence[str]], Path],
    golden: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """100 protected domains: past 64 the JavaScript fuzzy stages use the deletion tables, as the server
    does, instead of testing each protected domain (the two configurations above take that path)."""
    domains = random.Random(22).sample(sorted(resources.legitimate_domains()), 100)
    listed = tmp_path_factory.mktemp("many") / "protected.txt"
    listed.write_text("\n".join(domains) + "\n", "utf-8")
    guard = Guard.from_config(Config(protect=ProtectConfig(files=(str(listed),))))
    rng = random.Random(23)
    sample = rng.sample(domains, 8)
    items: list[str | bytes] = [*golden, *HANDPICKED, *dnstwist_variants(sample)]
    items += [v for v in own_variants(guard, only=rng.sample(domains, 20)) if rng.random() < 0.3]
    items += homoglyph_inputs(sample) + random_inputs(rng, domains, 4000)
    items = thinned(items, len(golden) + len(HANDPICKED), every=3)
    args = ["--protect-file", str(listed)]
    c = run_both(runners, export_bundle(args), args, items)
    golden_lines = {line for line in map(as_line, golden) if line is not None}
    report("100 protected domains", c, golden_lines)
    assert_contract(c, golden_lines)


def test_invalid_names_are_refused_in_the_same_words(
    runners: Runners, export_bundle: Callable[[Sequence[str]], Path]
) -> None:
    """An invalid recipient's error is the server's sentence, quoting included (people read it)."""
    args = ["--protect", "army.mil"]
    bad = ["bob@", "bob@army..mil", "a_b.mil", "bob@xn--zz.com", "⑴.com", "ａ_b.com", "x" * 65 + "@army.mil",
           "bob@arm\udcffy.mil", "\"it's\"@", "bob@" + "b" * 300 + ".com"]  # fmt: skip
    c = run_both(runners, export_bundle(args), args, bad)
    for p, j in zip(c.python, c.js, strict=True):
        assert p["action"] == "invalid"
        assert (j["error"], j["reason"]) == (p["error"], p["reason"])


def test_js_detector_damps_ascii_lookalikes_of_short_names_as_the_server_does(
    runners: Runners, export_bundle: Callable[[Sequence[str]], Path]
) -> None:
    """Short acronyms one look-alike letter apart are often two real organisations (dla.mil and dia.mil):
    both detectors give them the short-name factor, found by skeleton or by variant."""
    protected = ["dia.mil", "cia.gov", "aol.com", "dtic.mil", "paypal.com", "ca.ibm.com"]
    args = [arg for d in protected for arg in ("--protect", d)]
    typed = ["dla.mil", "d1a.mil", "dla.com", "dla.ml", "cla.gov", "c1a.gov", "ao1.com", "aoi.com", "a0l.com",
             "dtlc.mil", "dt1c.mil", "paypai.com", "paypa1.com", "ca.lbm.com", "calbm.com", "ca.ibrn.com",
             "bob@dla.mil", "dіa.mil"]  # fmt: skip
    c = run_both(runners, export_bundle(args), args, typed)
    for p, j in zip(c.python, c.js, strict=True):
        assert j == p
    by_name = {p["recipient"]: p for p in c.python}
    assert by_name["bob@dla.mil"]["action"] == "warn"
    assert by_name["paypai.com"]["action"] == "reject"
