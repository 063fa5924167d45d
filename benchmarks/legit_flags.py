"""How many of the shipped legitimate mail domains would be flagged by detection alone (the legit list off).

The legit list allows those domains whatever detection says; this counts what detection would say without
it, so a scoring change that makes real domains look like typos shows up (issue 15 item 12). Two protected
sets: the example configuration's 19 domains, and the example's plus the first 200 names of the legit list
itself (an organisation protecting the providers its people write to; those are then protected, not
checked).

    .venv/bin/python -m benchmarks.legit_flags
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

from typoguard import resources
from typoguard.config import Config, ProtectConfig
from typoguard.core.verdict import Action
from typoguard.guard import Guard

ROOT = Path(__file__).resolve().parent.parent


def _legit() -> list[str]:
    text = (ROOT / "src/typoguard/data/legit_domains.txt").read_text("utf-8")
    return resources.read_domain_list(text)


def flagged(protected: list[str], names: list[str]) -> tuple[int, int, Counter[str], list[str]]:
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=tuple(protected), use_legit_list=False)))
    checked = 0
    by_action: Counter[str] = Counter()
    examples = []
    for name in names:
        if guard.index.is_protected(name):
            continue
        checked += 1
        v = guard.check(name)
        if v.action is not Action.ALLOW:
            by_action[v.action.value] += 1
            examples.append(f"{name} {v.action.value} {v.kind} {v.score:.2f} ~{v.intended}")
    return checked, sum(by_action.values()), by_action, examples


def main() -> None:
    example = tomllib.loads((ROOT / "examples/typoguard.toml").read_text("utf-8"))["protect"]["domains"]
    legit = _legit()
    for label, protected in (
        ("example config (19 protected)", list(example)),
        ("example + first 200 legit names", list(dict.fromkeys([*example, *legit[:200]]))),
    ):
        checked, n, by_action, examples = flagged(protected, legit)
        print(f"{label}: {n} of {checked} legit domains flagged {dict(by_action)}")
        for e in examples:
            print("   ", e)


if __name__ == "__main__":
    main()
