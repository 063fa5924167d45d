"""The pure parts: block-list formats, run comparison, the history file."""

from __future__ import annotations

import resource
import signal
import subprocess
from pathlib import Path

import pytest

from typoguard.errors import ConfigError
from typoguard.exposure.classify import compare, group_by_provider
from typoguard.exposure.export import (
    EXCHANGE_DOMAINS_PER_RULE,
    BlockEntry,
    exchange_powershell,
    plain_list,
    postfix_access,
    rspamd_multimap,
)
from typoguard.exposure.history import JsonFileHistory
from typoguard.exposure.model import Exposure, Snapshot, Status


def _body(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_a_lookalike_is_listed_once_for_the_domain_it_most_likely_meant() -> None:
    entries = [BlockEntry("gmai.com", "gmx.com", score=0.5), BlockEntry("gmai.com", "gmail.com", score=0.9)]
    assert _body(postfix_access(entries)) == ["gmai.com REJECT 5.1.2 did you mean gmail.com?"]
    assert plain_list(entries) == "gmai.com\n"


def test_same_input_gives_the_same_file() -> None:
    a = [BlockEntry("b.ml", "b.mil"), BlockEntry("a.ml", "a.mil")]
    assert postfix_access(a) == postfix_access(list(reversed(a)))


def test_rspamd_map_groups_domains_under_their_intended_domain() -> None:
    text = rspamd_multimap([BlockEntry("army.ml", "army.mil"), BlockEntry("navy.ml", "navy.mil")])
    lines = text.splitlines()
    assert (
        lines.index("# look-alikes of army.mil")
        < lines.index("army.ml")
        < lines.index("# look-alikes of navy.mil")
    )


def test_exchange_rules_are_split_and_quoted() -> None:
    entries = [BlockEntry(f"x{i}.ml", "o'brien.mil") for i in range(EXCHANGE_DOMAINS_PER_RULE + 1)]
    script = exchange_powershell(entries)
    rules = [line for line in script.splitlines() if line.startswith("New-TransportRule")]
    assert len(rules) == 2
    assert "-Name 'typoguard: look-alikes of o''brien.mil (1/2)'" in rules[0]
    assert rules[0].count(".ml'") == EXCHANGE_DOMAINS_PER_RULE
    assert "Remove-TransportRule" in script  # re-running replaces the rules instead of piling them up


def _exp(name: str, status: Status, hosts: tuple[str, ...] = (), provider: str = "") -> Exposure:
    return Exposure("army.mil", name, "suffix_typo", 0.9, status, hosts, provider)


def test_compare_reports_newly_registered_lookalikes_with_mx() -> None:
    before = Snapshot("t0", (_exp("army.ml", Status.UNREGISTERED), _exp("army.il", Status.NO_MAIL)))
    after = Snapshot(
        "t1",
        (
            _exp("army.ml", Status.ACCEPTS_MAIL, ("mx.x.example",), "x.example"),
            _exp("army.il", Status.NO_MAIL),
            _exp("new.ml", Status.UNREGISTERED),  # newly scanned, unregistered: not news
        ),
    )
    changes = compare(before, after)
    assert [(c.lookalike, c.before, c.after, c.newly_accepts_mail) for c in changes] == [
        ("army.ml", Status.UNREGISTERED, Status.ACCEPTS_MAIL, True)
    ]
    assert compare(after, after) == []


def test_one_provider_behind_many_lookalikes_is_one_group() -> None:
    results = [
        _exp("a.ml", Status.ACCEPTS_MAIL, ("mx1.c.example",), "c.example"),
        _exp("b.ml", Status.ACCEPTS_MAIL, ("mx2.c.example",), "c.example"),
        _exp("c.ml", Status.ACCEPTS_MAIL, ("mx.other.example",), "other.example"),
        _exp("d.ml", Status.NULL_MX),
    ]
    groups = group_by_provider(results)
    assert [(g.provider, len(g.lookalikes)) for g in groups] == [("c.example", 2), ("other.example", 1)]
    assert groups[0].mail_hosts == ("mx1.c.example", "mx2.c.example")


def test_history_keeps_the_last_runs(tmp_path: Path) -> None:
    history = JsonFileHistory(tmp_path / "h.json", keep=2)
    assert history.last() is None
    for t in ("t1", "t2", "t3"):
        history.append(Snapshot(t, (_exp("army.ml", Status.ACCEPTS_MAIL, ("mx.x",), "x"),)))
    last = history.last()
    assert last is not None and last.taken_at == "t3"
    assert last.results[0].mail_hosts == ("mx.x",)
    assert len(history._runs()) == 2


@pytest.mark.parametrize(
    "content", ["not json", '{"format": "other"}', '{"format": "typoguard-exposure-history/1"}']
)
def test_a_damaged_history_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "h.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"h\.json"):
        JsonFileHistory(path).last()


def _export(exe: str, output: Path, *, max_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # the child can write files of at most max_file_bytes: as a full disk does
        if max_file_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [exe, "export", "--protect", "army.mil", "--protect", "gmail.com", "--format", "postfix-access",
         "--output", str(output)],
        capture_output=True, text=True, timeout=120, check=False, preexec_fn=limit,
    )  # fmt: skip


def test_export_replaces_its_output_whole_or_not_at_all(typoguard_exe: str, tmp_path: Path) -> None:
    # A block list is read by Postfix (postmap) or rspamd (which reloads a changed map by itself): a write
    # that fails half-way (a full disk) must leave the previous list as it was, never half a list.
    listed = tmp_path / "lookalikes"
    listed.write_text("army.ml REJECT old list\n")
    listed.chmod(0o644)
    failed = _export(typoguard_exe, listed, max_file_bytes=4096)
    assert failed.returncode == 2, failed.stderr
    assert "cannot write" in failed.stderr and "Traceback" not in failed.stderr
    assert listed.read_text() == "army.ml REJECT old list\n"
    assert [p.name for p in tmp_path.iterdir()] == ["lookalikes"]  # no temporary file left behind
    done = _export(typoguard_exe, listed)
    assert done.returncode == 0, done.stderr
    assert len(listed.read_text().splitlines()) > 100 and (listed.stat().st_mode & 0o777) == 0o644
