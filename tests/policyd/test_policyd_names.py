"""A real ``typoguard serve``: names IDNA 2008 forbids get a decision, and long or random names cost the
other clients neither memory nor time (issue 15 items 6 and 11)."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import socket
import string
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from typoguard.policyd.query import query, rcpt_request

CONFIG = """
[protect]
domains = ["army.mil", "gmail.com", "yahoo.com", "outlook.com"]
[policy]
internal_senders = ["army.mil"]
[policyd]
listen = "127.0.0.1:0"
metrics_listen = ""
[log]
file = "{log}"
[store]
data_dir = "{data}"
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}


@pytest.fixture
def served(typoguard_exe: str, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    """(address, pid, decision log) of a running ``typoguard serve --only policyd``."""
    config, log, out = tmp_path / "t.toml", tmp_path / "t.jsonl", tmp_path / "out.txt"
    config.write_text(CONFIG.format(log=log, data=tmp_path / "data"))
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [typoguard_exe, "serve", "--config", str(config), "--only", "policyd"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        deadline = time.monotonic() + 30
        while not (m := re.search(r"policy service: 127\.0\.0\.1:(\d+)", out.read_text())):
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        yield f"127.0.0.1:{m.group(1)}", proc.pid, log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _decisions(log: Path, recipient: str) -> list[dict[str, object]]:
    out = []
    for line in log.read_text("utf-8").splitlines():
        record = json.loads(line)
        if record.get("event") == "decision" and record.get("recipient") == recipient:
            out.append(record)
    return out


# ----------------------------------------------------------------------------- item 11
@pytest.mark.parametrize(
    ("recipient", "reply", "action"),
    [
        ("bob@xn--gail-0q8a.com", "550 5.1.2", "reject"),  # gⅿail.com (U+217F), as registered
        ("bob@g\u217fail.com", "550 5.1.2", "reject"),  # the same, typed (SMTPUTF8)
        ("bob@xn--o38h.abrdns.com", "DUNNO", "allow"),  # an emoji name that resolves: checked, allowed
    ],
)
def test_policy_decides_on_names_idna_2008_forbids(
    served: tuple[str, int, Path], recipient: str, reply: str, action: str
) -> None:
    address, _, log = served
    (answer,) = query(address, [rcpt_request("alice@army.mil", recipient)])
    assert answer.startswith(reply)
    deadline = time.monotonic() + 5
    while not (found := _decisions(log, recipient)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found and found[0]["action"] == action, found


# ----------------------------------------------------------------------------- item 6
def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process ``pid`` has used: unlike the wall clock, not stretched when the
    machine is busy with other work."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _request(recipient: str) -> bytes:
    return (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\n"
        f"sender=alice@army.mil\nrecipient={recipient}\n\n"
    ).encode()


def _read_replies(sock: socket.socket, n: int) -> None:
    got, buf = 0, b""
    while got < n:
        chunk = sock.recv(1 << 16)
        assert chunk, "the service closed the connection"
        buf += chunk
        got += buf.count(b"\n\n")
        buf = buf[buf.rfind(b"\n\n") + 2 :] if b"\n\n" in buf else buf


def _attack_batches(seed: int, batches: int, depth: int) -> list[bytes]:
    """Pipelined requests whose recipients are all distinct: 8 KB invalid names and random valid ones.

    Made before the attack starts, so this process's own work does not show in the probe's times."""
    rng = random.Random(seed)
    body = "".join(rng.choices(string.ascii_lowercase + string.digits, k=8000))
    out = []
    for b in range(batches):
        recipients = []
        for k in range(depth):
            if k % 4 == 3:
                recipients.append("x@" + ".".join(rng.randbytes(25).hex() for _ in range(4)) + ".com")
            else:
                recipients.append(f"x@{seed}{b:05d}{k:03d}{body}.com")
        out.append(b"".join(_request(r) for r in recipients))
    return out


def _attack(address: str, batches: list[bytes], depth: int) -> None:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        for batch in batches:
            sock.sendall(batch)
            _read_replies(sock, depth)


def test_long_and_random_names_do_not_stall_other_clients(
    served: tuple[str, int, Path],
) -> None:
    """Before: every 8 KB name was walked (~2 ms) before its length was checked: 64 pipelined ones held the
    loop for 128 ms."""
    address, pid, _ = served
    probe_request = _request("bob@army.ml")
    host, port = address.rsplit(":", 1)
    times: list[float] = []
    with socket.create_connection((host, int(port)), timeout=10) as probe:
        for _ in range(50):  # warm: the probe's own name cached, the loop and the log running
            probe.sendall(probe_request)
            _read_replies(probe, 1)
        before = _rss_kib(pid)
        attackers = [
            threading.Thread(target=_attack, args=(address, _attack_batches(seed, 40, 64), 64), daemon=True)
            for seed in (1, 2)
        ]
        cpu_before = _cpu_seconds(pid)
        attack_started = time.perf_counter()
        for t in attackers:
            t.start()
        while any(t.is_alive() for t in attackers):
            t0 = time.perf_counter()
            probe.sendall(probe_request)
            reply = probe.recv(4096)
            times.append(time.perf_counter() - t0)
            assert reply.startswith(b"action=550"), reply
            time.sleep(0.005)
        for t in attackers:
            t.join(60)
        attack_seconds = time.perf_counter() - attack_started
        attack_cpu = _cpu_seconds(pid) - cpu_before
        grown_mib = (_rss_kib(pid) - before) / 1024
    times.sort()
    p99 = times[int(len(times) * 0.99)]
    # What the detector and the policy service cache is bounded by bytes (tests/core/test_detector.py,
    # tracemalloc). The serve process still holds a few KB per request while such a load lasts, outside
    # those caches (with the store and the decision log off too): not asserted here, reported in issue 15
    # item 6 with benchmarks/bench_long_domains.py.
    print(f"serve RSS grew {grown_mib:.0f} MiB over 5,120 attack requests")
    # Before: ~2 ms of loop time for each 8 KB name, so >= 7.7 s for the 3,840 of them and a probe waiting
    # behind 64 of them (>= 128 ms). The 2 ms p99 is measured alone by bench_long_domains.py; on a
    # shared machine this asserts what tells the two apart. The attack's cost is the service's CPU time
    # (~0.5 s now): its wall-clock time (~0.9 s alone) reached 3.3 s with four busy processes on 2 cores.
    assert attack_cpu < 4.0, f"5,120 attack requests took {attack_cpu:.1f} s of CPU ({attack_seconds:.1f} s)"
    assert p99 < 0.1, f"probe p99 {p99 * 1e3:.1f} ms over {len(times)} probes"


def test_a_client_pipelining_long_recipients_does_not_grow_the_service(
    served: tuple[str, int, Path],
) -> None:
    """Before: a chunk that ended exactly at a request's end left the codec's buffer unconsumed, and the next
    chunk was appended to it: a client pipelining whole batches grew the service by every byte it sent
    (~3.5 KB a request under the bench_long_domains attack, +410 MiB in 15 s), freed only at disconnect."""
    address, pid, _ = served
    host, port = address.rsplit(":", 1)
    body = "q" * 8000
    depth, batches = 16, 1000  # 16,000 requests of ~8.1 KB: 130 MB sent on one connection
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(_request("bob@army.ml"))  # warm: one ordinary request answered
        _read_replies(sock, 1)
        before = _rss_kib(pid)
        for b in range(batches):
            sock.sendall(b"".join(_request(f"x@{b:05d}{k:03d}{body}.com") for k in range(depth)))
            _read_replies(sock, depth)
        grown_mib = (_rss_kib(pid) - before) / 1024
    assert grown_mib < 40, f"serve RSS grew {grown_mib:.0f} MiB over 130 MB of pipelined requests"


def test_recipients_and_senders_too_long_to_be_valid_are_logged_and_stored_truncated(
    served: tuple[str, int, Path], tmp_path: Path
) -> None:
    """An address longer than 254 characters cannot be valid (RFC 5321 4.5.3.1.3): the decision log and
    the store keep its start, a marker and its length, so a client cannot make typoguard write 8 KB to disk
    for every request."""
    from typoguard.config import load_config
    from typoguard.store import DecisionQuery, open_store

    address, _, log = served
    long_rcpt = "bob@" + "a" * 8000 + ".com"
    long_sender = "x" * 5000 + "@army.mil"  # an internal sender: a decision, stored
    outside = "y" * 5000 + "@example.com"  # not an internal sender: a "skip", logged only
    answers = query(
        address,
        [
            rcpt_request("alice@army.mil", long_rcpt),
            rcpt_request(long_sender, "carol@army.ml"),
            rcpt_request(outside, "carol@army.ml"),
        ],
    )
    assert answers[0] == answers[2] == "DUNNO" and answers[1].startswith("550 5.1.2"), answers
    deadline = time.monotonic() + 10
    records: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        text = log.read_text("utf-8") if log.exists() else ""
        records = [r for r in map(json.loads, text.splitlines()) if r.get("event") == "decision"]
        if len(records) >= 3:
            break
        time.sleep(0.05)
    assert len(records) == 3, records
    invalid, reject, skip = records
    assert invalid["action"] == "invalid"
    assert invalid["recipient"] == long_rcpt[:64] + f"...[truncated, {len(long_rcpt)} chars]"
    assert reject["action"] == "reject"
    assert reject["sender"] == long_sender[:64] + f"...[truncated, {len(long_sender)} chars]"
    assert skip["action"] == "skip"
    assert skip["sender"] == outside[:64] + f"...[truncated, {len(outside)} chars]"
    assert max(len(line) for line in log.read_text("utf-8").splitlines()) < 1200

    store = open_store(load_config(tmp_path / "t.toml"))
    try:
        deadline = time.monotonic() + 15
        while len(rows := store.decisions(DecisionQuery(limit=100))) < 2:
            assert time.monotonic() < deadline, f"2 decisions not stored: {rows}"
            time.sleep(0.1)
    finally:
        store.close()
    stored = {r.event.action: r.event for r in rows}
    assert stored["invalid"].recipient == invalid["recipient"]
    assert stored["reject"].sender == reject["sender"]


def test_pipelining_clients_share_one_turn_one_request_each(served: tuple[str, int, Path]) -> None:
    """Before: each connection with pipelined requests had its own turn of 200 us, so a request arriving
    alone waited behind one turn per pipelining client (4 attackers: probe p50 1.2-1.3 ms, 0.5 ms without
    them; ADR 0031). Now all pipelined work shares one turn, one request per connection in turn: the
    decision log shows four clients' pipelined requests interleaved, where they came in runs of ~10."""
    address, _, log = served
    host, port = address.rsplit(":", 1)
    depth = 300  # ~45 KB a client: all of it fits in the socket buffers, sent before much is answered
    batches = [
        b"".join(
            (
                "request=smtpd_access_policy\nprotocol_state=RCPT\n"
                f"client_address=10.0.0.{n}\nsender=alice@army.mil\nrecipient=bob@army.ml\n\n"
            ).encode()
            for _ in range(depth)
        )
        for n in range(4)
    ]
    socks = [socket.create_connection((host, int(port)), timeout=30) for _ in batches]
    try:
        for sock, batch in zip(socks, batches, strict=True):
            sock.sendall(batch)
        for sock in socks:
            _read_replies(sock, depth)
    finally:
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + 5
    while len(order := _clients_in_log_order(log)) < 4 * depth and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(order) == 4 * depth
    # While all four have requests waiting (the middle of the log), no client is answered twice in a row
    # more than rarely (a client's next chunk read between turns); before, every turn was a run.
    middle = order[depth // 2 : 2 * depth]
    runs = [len(list(group)) for _, group in itertools.groupby(middle)]
    assert max(runs) <= 3, f"runs of one client's requests: {sorted(runs)[-10:]}"


def _clients_in_log_order(log: Path) -> list[str]:
    out = []
    for line in log.read_text("utf-8").splitlines():
        if line.endswith("}"):
            record = json.loads(line)
            if record.get("event") == "decision" and str(record.get("client", "")).startswith("10.0.0."):
                out.append(str(record["client"]))
    return out
