"""The client bundle and the JavaScript detector (clients/detector): bundle size, load time, checks/s in Node.

Baselines measured in the same run: Python's ``Guard.check`` in-process on the same recipients (so the ratio
says what moving the decision into a mail client costs or gains), and ``typoguard check --format json -``
against ``node clients/detector/cli.mjs`` on the same file (the command-line contract, end to end).

Inputs are deterministic: 20 protected domains sampled from the shipped legitimate-domain list (real mail
domains), 1,000 protected domains (the whole list, topped up with bench_detection's made-up names); recipients
are bench_detection's mail stream (70% legitimate with Zipf-like repetition, 30% look-alikes of the protected
domains), and a cold set where every domain is distinct. Node and this process are each pinned to one core.

Run with ``python -m benchmarks --only clients`` (about a minute). Needs ``node`` (18+); makes no assertions.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, clean_env, pin
from benchmarks.bench_detection import (
    Row,
    best_rate,
    legitimate_pool,
    local_part,
    lookalike_pool,
    mail_stream,
    one_core,
    print_table,
    protected_domains,
)
from typoguard import resources
from typoguard.config import Config, ProtectConfig
from typoguard.guard import Guard

SEED = 20260120
N_STREAM = 300_000
N_COLD = 20_000
N_CLI = 200_000
LOAD_RUNS = 5
DETECTOR = ROOT / "clients" / "detector"

# Runs in a fresh Node process: argv = [bundle, recipients file, mode]. Prints one JSON object.
JS_HARNESS = r"""
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [bundlePath, inputPath, mode, detectorPath] = process.argv.slice(1);
const t0 = performance.now();
const { loadBundle } = await import(pathToFileURL(detectorPath).href);
const imported = performance.now() - t0;
const text = readFileSync(bundlePath, 'utf8');
let t = performance.now();
let d = loadBundle(text, { verify: mode !== 'noverify' });
const load = performance.now() - t;
const out = { imported, load };
if (mode === 'load' || mode === 'noverify') {
  t = performance.now();
  d.check('bob@аrmy.example');  // the first non-ASCII name builds the Unicode tables
  out.firstIdn = performance.now() - t;
} else {
  const recipients = readFileSync(inputPath, 'utf8').split('\n').filter(Boolean);
  const rate = (fn, seconds) => {
    let best = 0;
    for (let round = 0; round < 3; round++) {
      const start = performance.now();
      let n = 0;
      while (performance.now() - start < seconds * 1000) n += fn();
      best = Math.max(best, n / ((performance.now() - start) / 1000));
    }
    return best;
  };
  if (mode === 'hot') {
    for (const r of recipients) d.check(r);
    out.rate = rate(() => { for (const r of recipients) d.check(r); return recipients.length; }, 1);
  } else {
    // cold: every domain distinct, nothing cached (a detector of its own per pass, built outside the clock)
    const envelope = JSON.parse(text);
    let best = 0;
    for (let round = 0; round < 4; round++) {
      const fresh = new d.constructor(envelope);
      fresh.check('x@аrmy.example');
      const start = performance.now();
      for (const r of recipients) fresh.check(r);
      best = Math.max(best, recipients.length / ((performance.now() - start) / 1000));
    }
    out.rate = best;
  }
  let flagged = 0;
  for (const r of recipients.slice(0, 20000)) if (d.check(r).action !== 'allow') flagged++;
  out.flagged = flagged;
}
console.log(JSON.stringify(out));
"""


def node_run(node: str, bundle: Path, inputs: Path | None, mode: str) -> dict[str, Any]:
    proc = subprocess.Popen(
        [node, "--input-type=module", "-e", JS_HARNESS, str(bundle), str(inputs or ""), mode,
         str(DETECTOR / "detector.mjs")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    pin(proc.pid, 0)
    out, _ = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"node harness failed ({mode})")
    result: dict[str, Any] = json.loads(out)
    return result


def export(protect_file: Path, out: Path) -> float:
    exe = str(Path(sys.executable).with_name("typoguard"))
    t0 = time.perf_counter()
    subprocess.run(
        [exe, "export", "--format", "client-bundle", "--protect-file", str(protect_file), "-o", str(out)],
        check=True, env=clean_env(),
    )  # fmt: skip
    return time.perf_counter() - t0


def thousand_domains() -> list[str]:
    """1,000 protected domains: every shipped legitimate domain, then bench_detection's made-up ones."""
    legit = sorted(resources.legitimate_domains())
    made_up = [d for d in protected_domains(1_000, SEED) if d not in legit]
    return (legit + made_up)[:1_000]


def _met(ok: bool, applies: bool) -> str:
    return ("yes" if ok else "NO") if applies else "n/a"


def bench_size_and_load(
    node: str, tmp: Path, sets: dict[str, list[str]]
) -> tuple[list[Row], dict[str, Path]]:
    rows: list[Row] = []
    bundles: dict[str, Path] = {}
    for label, domains in sets.items():
        listed = tmp / f"protect-{label}.txt"
        listed.write_text("\n".join(domains) + "\n", "utf-8")
        bundle = tmp / f"bundle-{label}.json"
        seconds = export(listed, bundle)
        bundles[label] = bundle
        size = bundle.stat().st_size
        loads = [node_run(node, bundle, None, "load") for _ in range(LOAD_RUNS)]
        plain = [node_run(node, bundle, None, "noverify") for _ in range(LOAD_RUNS)]
        load = statistics.median(r["load"] for r in loads)
        twenty = label == "20"
        rows += [
            Row(f"bundle, {label} protected domains", f"{size:,} bytes", "<= 2 MB" if twenty else "-",
                _met(size <= 2 << 20, twenty)),
            Row("  (export time, typoguard export)", f"{seconds:.1f} s", "", ""),
            Row(f"load (loadBundle, fresh node, median of {LOAD_RUNS})", f"{load:.1f} ms",
                "<= 50 ms" if twenty else "-", _met(load <= 50, twenty)),
            Row("  (without the sha256 check)", _ms(r["load"] for r in plain), "", ""),
            Row("  (module import, before load)", _ms(r["imported"] for r in loads), "", ""),
            Row("  (first non-ASCII name: Unicode tables, once)", _ms(r["firstIdn"] for r in loads), "", ""),
        ]  # fmt: skip
    return rows, bundles


def _ms(values: Iterable[float]) -> str:
    return f"{statistics.median(values):.1f} ms"


def bench_checks(node: str, tmp: Path, label: str, bundle: Path, domains: Sequence[str]) -> list[Row]:
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=tuple(domains))))
    legit = legitimate_pool(domains, 20_000, SEED + 1)
    lookalikes = lookalike_pool(guard, domains, 3_000, SEED + 2)
    stream = mail_stream(legit, lookalikes, N_STREAM, SEED + 3)
    rng = random.Random(SEED + 4)
    cold_domains = list(dict.fromkeys(rng.sample(legit, int(N_COLD * 0.7)) + lookalikes))[:N_COLD]
    rng.shuffle(cold_domains)
    cold = [f"{local_part(rng)}@{d}" for d in cold_domains]
    stream_file, cold_file = tmp / f"stream-{label}.txt", tmp / f"cold-{label}.txt"
    stream_file.write_text("\n".join(stream) + "\n", "utf-8")
    cold_file.write_text("\n".join(cold) + "\n", "utf-8")

    check = guard.check

    def python_hot() -> int:
        for r in stream:
            check(r)
        return len(stream)

    def python_cold() -> int:
        guard.detector.clear_cache()
        for r in cold:
            check(r)
        return len(cold)

    with one_core():
        python_hot()
        py_hot = best_rate(python_hot, repeats=2)
        py_cold = best_rate(python_cold, repeats=2)
    hot = node_run(node, bundle, stream_file, "hot")
    cold_js = node_run(node, bundle, cold_file, "cold")
    target = ">= 100,000/s" if label == "20" else "-"
    return [
        Row(f"Node check/s, {label} protected, mail stream (repeats)", f"{hot['rate']:,.0f}/s", target,
            _met(hot["rate"] >= 100_000, label == "20")),
        Row("  baseline: Python Guard.check, same stream", f"{py_hot:,.0f}/s", "", ""),
        Row("  ratio Node / Python", f"{hot['rate'] / py_hot:.2f}x", "", ""),
        Row(f"Node check/s, {label} protected, every domain distinct", f"{cold_js['rate']:,.0f}/s", target,
            _met(cold_js["rate"] >= 100_000, label == "20")),
        Row("  baseline: Python Guard.check, same names, cache cleared", f"{py_cold:,.0f}/s", "", ""),
        Row("  ratio Node / Python", f"{cold_js['rate'] / py_cold:.2f}x", "", ""),
    ]  # fmt: skip


def bench_cli(node: str, tmp: Path, domains: Sequence[str], bundle: Path) -> list[Row]:
    """The command-line contract end to end: the same recipients through both, wall time incl. start-up."""
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=tuple(domains))))
    stream = mail_stream(legitimate_pool(domains, 20_000, SEED + 5), lookalike_pool(guard, domains, 3_000),
                         N_CLI, SEED + 6)  # fmt: skip
    recipients = tmp / "cli.txt"
    recipients.write_text("\n".join(stream) + "\n", "utf-8")
    listed = tmp / "protect-20.txt"
    exe = str(Path(sys.executable).with_name("typoguard"))

    def run(cmd: list[str]) -> float:
        with recipients.open("rb") as stdin:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, env=clean_env())
            pin(proc.pid, 0)
            out, _ = proc.communicate()
            seconds = time.perf_counter() - t0
        lines = out.count(b"\n")
        if lines != len(stream):
            raise RuntimeError(f"{cmd[0]}: {lines} lines for {len(stream)} recipients")
        return seconds

    js = min(run([node, str(DETECTOR / "cli.mjs"), str(bundle)]) for _ in range(2))
    py = min(run([exe, "check", "--format", "json", "--protect-file", str(listed), "-"]) for _ in range(2))
    return [
        Row(f"node cli.mjs, {len(stream):,} rcpts, 20 protected", f"{len(stream) / js:,.0f}/s", "-", "n/a"),
        Row("  baseline: typoguard check --format json -", f"{len(stream) / py:,.0f}/s", "", ""),
        Row("  ratio node / typoguard", f"{py / js:.2f}x", "", ""),
    ]


def main() -> None:
    started = time.perf_counter()
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        print("bench_clients: node is not installed (apt-get install nodejs); nothing measured")
        return
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    twenty = random.Random(SEED).sample(sorted(resources.legitimate_domains()), 20)
    sets = {"20": twenty, "1000": thousand_domains()}
    print(f"node {version}; 20 protected: {', '.join(twenty[:5])}, ...; 1,000 protected", flush=True)
    with tempfile.TemporaryDirectory(prefix="typoguard-bench-") as tmpdir:
        tmp = Path(tmpdir)
        rows, bundles = bench_size_and_load(node, tmp, sets)
        rows += bench_checks(node, tmp, "20", bundles["20"], twenty)
        rows += bench_checks(node, tmp, "1000", bundles["1000"], sets["1000"])
        rows += bench_cli(node, tmp, twenty, bundles["20"])
    print()
    print_table(rows)
    print(f"\n(bench_clients took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
