"""policyd/server.py: a real policy server on an ephemeral loopback port (or a UNIX socket), in a thread.

Everything here is what Postfix (or an attacker) sees on the wire: replies, disconnects, timeouts,
plus the JSON log lines and the metrics page an operator reads.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from typoguard.config import Config, LogConfig, PolicyConfig, PolicydConfig, ProtectConfig
from typoguard.obs import JsonLog
from typoguard.policyd.decider import PolicyDecider
from typoguard.policyd.query import query, rcpt_request
from typoguard.policyd.server import PolicyServer
from typoguard.protocols.postfix_policy import encode_request

CONFIG = Config(
    protect=ProtectConfig(domains=("army.mil", "gmail.com")),
    policy=PolicyConfig(internal_senders=("army.mil",)),
    policyd=PolicydConfig(listen="127.0.0.1:0", instance="test-node"),
)
CONFIG_TOML = """
[protect]
domains = [{domains}]
[policy]
internal_senders = ["army.mil"]
mode = "{mode}"
[policyd]
listen = "127.0.0.1:0"
"""


class Running:
    """A PolicyServer running its own event loop in a thread."""

    def __init__(self, config: Config, tmp_path: Path, config_path: Path | None = None) -> None:
        self.log_path = tmp_path / "typoguard.jsonl"
        config = replace(config, log=LogConfig(file=str(self.log_path)))
        self.server = PolicyServer(
            config, PolicyDecider.build(config), JsonLog(path=str(self.log_path)), config_path=config_path
        )
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.status: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "server did not start"
        self.address = self.server.addresses[0]

    def _run(self) -> None:
        try:
            self.status = self.loop.run_until_complete(self.server.run(on_ready=lambda _: self.ready.set()))
        finally:
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()
            self.ready.set()

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.stop)
            self.thread.join(15)
        self.server.log.close()

    def log_records(self) -> list[dict[str, object]]:
        async def flush() -> None:
            self.server.log.flush()

        self.call(flush())  # done when this returns (a fixed pause can be too short on a busy machine)
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(CONFIG, tmp_path)
    yield r
    r.stop()


def ask(r: Running, *recipients: str, sender: str = "alice@army.mil") -> list[str]:
    return query(r.address, [rcpt_request(sender, rc, client_address="192.0.2.1") for rc in recipients])


def closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True when the server closed the connection (EOF or reset) without sending anything."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_many_requests_on_one_connection_each_get_their_answer(running: Running) -> None:
    answers = ask(running, "bob@army.ml", "bob@army.mil", "carol@gmial.com", "dave@example.org")
    assert answers[0].startswith("550 5.1.2 Not sent: army.ml") and "Did you mean bob@army.mil?" in answers[0]
    assert answers[1] == "DUNNO"
    assert answers[2].startswith("550 5.1.2 Not sent: gmial.com")
    assert answers[3] == "DUNNO"


def test_pipelined_requests_in_one_write_are_answered_in_order(running: Running) -> None:
    payload = b"".join(
        encode_request(rcpt_request("alice@army.mil", r)) for r in ("a@army.ml", "b@army.mil", "c@army.ml")
    )
    with running.connect() as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"\n\n") < 3:
            chunk = sock.recv(4096)
            assert chunk
            data += chunk
    replies = data.split(b"\n\n")[:3]
    assert replies[0].startswith(b"action=550") and b"Did you mean a@army.mil?" in replies[0]
    assert replies[1] == b"action=DUNNO"
    assert b"Did you mean c@army.mil?" in replies[2]


def test_one_json_log_line_per_decision(running: Running) -> None:
    ask(running, "bob@army.ml", "bob@army.mil")
    ask(running, "bob@army.ml", sender="stranger@example.net")
    decisions = [r for r in running.log_records() if r.get("event") == "decision"]
    assert [(d["recipient"], d["action"]) for d in decisions] == [
        ("bob@army.ml", "reject"),
        ("bob@army.mil", "allow"),
        ("bob@army.ml", "skip"),
    ]
    first = decisions[0]
    for key in ("time", "instance", "sender", "recipient", "action", "intended", "kind", "score"):
        assert key in first, key
    assert first["instance"] == "test-node" and first["intended"] == "army.mil"
    assert str(first["time"]).endswith("Z")


def test_requests_from_a_stage_where_no_recipient_is_judged_are_said_loudly(running: Running) -> None:
    """check_policy_service put under smtpd_data_restrictions (or the client, HELO or sender ones) instead
    of smtpd_recipient_restrictions: Postfix asks at DATA, there is no recipient to judge, the answer is
    DUNNO and every look-alike goes through while the service looks healthy. That must be in the log
    (rarely: once a minute per stage, with the count), not silent; VRFY and ETRN are no mistake."""

    def at(state: str, recipient: str) -> dict[str, str]:
        return {**rcpt_request("alice@army.mil", recipient), "protocol_state": state}

    requests = [at("DATA", ""), at("DATA", "bob@army.ml"), at("MAIL", ""), at("VRFY", "bob@army.ml")]
    requests += [at("DATA", "") for _ in range(20)] + [at("x" * 200, "bob@army.ml")]
    answers = query(running.address, requests)
    assert set(answers) == {"DUNNO"}
    warned = [r for r in running.log_records() if r.get("event") == "policy_request_not_at_rcpt"]
    assert [w["protocol_state"] for w in warned] == ["DATA", "MAIL", "other"], warned
    assert "smtpd_recipient_restrictions" in str(warned[0]["fix"]) and warned[0]["answered"] == "DUNNO"


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\xff garbage \x01\x02\n\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"recipient=bob@army.ml\nsender=alice@army.mil\n\n",  # no request=
        b"request=smtpd_access_policy\nhelo_name=" + b"x" * 9000 + b"\n\n",  # line over 8 KiB
        b"request=smtpd_access_policy\n" + b"".join(b"a%d=1\n" % i for i in range(150)) + b"\n",
    ],
    ids=["garbage", "http", "no-request", "long-line", "too-many-attributes"],
)
def test_broken_input_gets_a_disconnect_never_a_reply(running: Running, payload: bytes) -> None:
    with running.connect() as sock:
        sock.sendall(payload)
        assert closed_by_server(sock)
    # ... and the server is fine afterwards
    assert ask(running, "bob@army.ml")[0].startswith("550")
    records = running.log_records()
    assert any(r.get("event") == "disconnect" and r.get("reason") == "protocol" for r in records)
    assert running.server.metrics.errors.get("protocol") == 1


def test_a_good_request_then_garbage_gets_the_answer_then_a_disconnect(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(encode_request(rcpt_request("alice@army.mil", "bob@army.mil")) + b"junk\n\n")
        sock.settimeout(5)
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data == b"action=DUNNO\n\n"


def test_an_idle_client_is_disconnected(tmp_path: Path) -> None:
    r = Running(replace(CONFIG, policyd=replace(CONFIG.policyd, idle_timeout=0.3)), tmp_path)
    try:
        with r.connect() as idle, r.connect() as half:
            half.sendall(b"request=smtpd_access_policy\nrecipient=bob@")  # and never finishes
            started = time.monotonic()
            assert closed_by_server(idle) and closed_by_server(half)
            assert time.monotonic() - started < 3
        kinds = {rec.get("reason") for rec in r.log_records() if rec.get("event") == "disconnect"}
        assert kinds == {"idle_timeout", "request_timeout"}
    finally:
        r.stop()


def test_over_the_cap_with_every_request_in_progress_the_new_one_is_closed(tmp_path: Path) -> None:
    """Idle connections make room (tests/policyd/test_policyd_idle.py); requests in progress never do."""
    r = Running(replace(CONFIG, policyd=replace(CONFIG.policyd, max_connections=5)), tmp_path)
    socks: list[socket.socket] = []
    request = encode_request(rcpt_request("alice@army.mil", "bob@army.ml"))
    try:
        socks = [r.connect() for _ in range(5)]
        for s in socks:
            s.sendall(request[:-1])  # every one in the middle of a request

        async def in_progress() -> int:
            return sum(1 for c in r.server.connections if c.codec.buffered)

        # let the server read them (a fixed pause can be too short on a busy machine: an idle one is shed)
        deadline = time.monotonic() + 10
        while r.call(in_progress()) < 5:
            assert time.monotonic() < deadline, "the server did not read the 5 requests begun"
            time.sleep(0.02)
        with r.connect() as extra:
            assert closed_by_server(extra)
        socks[0].sendall(request[-1:])
        assert socks[0].recv(4096).startswith(b"action=550")
        assert r.server.metrics.connections_refused >= 1 and r.server.metrics.connections_shed == {}
    finally:
        for s in socks:
            s.close()
        r.stop()


def test_a_thousand_connections_do_not_hurt(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 and (hard == resource.RLIM_INFINITY or hard > soft):
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (min(4096, hard) if hard != resource.RLIM_INFINITY else 4096, hard)
        )
    r = Running(replace(CONFIG, policyd=replace(CONFIG.policyd, max_connections=200)), tmp_path)
    socks: list[socket.socket] = []
    try:
        for _ in range(1000):
            try:
                socks.append(r.connect())
            except OSError:
                break
        # the server (a thread here) sheds them as it accepts them: wait for it, however busy the machine
        deadline = time.monotonic() + 10
        while sum(r.server.metrics.connections_shed.values()) < len(socks) - 200:
            assert time.monotonic() < deadline, r.server.metrics.connections_shed
            time.sleep(0.05)
        assert len(r.server.connections) <= 200
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 5
    while r.server.connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ask(r, "bob@army.ml")[0].startswith("550")  # after the crowd leaves, service as usual
    r.stop()


def test_reload_swaps_the_protected_domains_without_dropping_connections(tmp_path: Path) -> None:
    path = tmp_path / "typoguard.toml"
    path.write_text(CONFIG_TOML.format(domains='"army.mil"', mode="enforce"))
    r = Running(CONFIG, tmp_path, config_path=path)
    try:
        with r.connect() as kept:
            kept.sendall(encode_request(rcpt_request("alice@army.mil", "bob@exmaple.com")))
            assert kept.recv(4096) == b"action=DUNNO\n\n"
            path.write_text(CONFIG_TOML.format(domains='"army.mil", "example.com"', mode="enforce"))
            assert r.call(r.server.reload()) is True
            kept.sendall(encode_request(rcpt_request("alice@army.mil", "bob@exmaple.com")))
            assert kept.recv(4096).startswith(b"action=550 5.1.2 Not sent: exmaple.com")
        assert any(rec.get("event") == "reloaded" for rec in r.log_records())
    finally:
        r.stop()


def test_a_config_that_fails_to_load_is_rejected_and_the_old_one_stays(tmp_path: Path) -> None:
    path = tmp_path / "typoguard.toml"
    path.write_text(CONFIG_TOML.format(domains='"army.mil"', mode="enforce"))
    r = Running(CONFIG, tmp_path, config_path=path)
    try:
        for broken in (
            "[protect\n",
            CONFIG_TOML.format(domains='"army.mil"', mode="sometimes"),
            CONFIG_TOML.format(domains='"not a domain!"', mode="enforce"),
        ):
            path.write_text(broken)
            assert r.call(r.server.reload()) is False
            assert ask(r, "bob@army.ml")[0].startswith("550")
        failures = [rec for rec in r.log_records() if rec.get("event") == "reload_failed"]
        assert len(failures) == 3 and all(f["kept"] == "old config" for f in failures)
        assert r.server.metrics.reloads == {"ok": 0, "failed": 3}
    finally:
        r.stop()


def test_stop_drains_and_closes_idle_connections(running: Running) -> None:
    with running.connect() as idle:
        ask(running, "bob@army.mil")
        running.loop.call_soon_threadsafe(running.server.stop)
        running.thread.join(10)
        assert not running.thread.is_alive() and running.status == 0
        assert closed_by_server(idle)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", running.port), timeout=1).close()
    assert any(rec.get("event") == "stopped" for rec in running.log_records_after_stop())


def _records_after_stop(self: Running) -> list[dict[str, object]]:
    return [json.loads(line) for line in self.log_path.read_text().splitlines()]


Running.log_records_after_stop = _records_after_stop  # type: ignore[attr-defined]


def test_unix_socket_listener(tmp_path: Path) -> None:
    sock_path = tmp_path / "policy.sock"
    r = Running(replace(CONFIG, policyd=replace(CONFIG.policyd, listen=f"unix:{sock_path}")), tmp_path)
    try:
        assert r.address == f"unix:{sock_path}"
        answers = query(r.address, [rcpt_request("alice@army.mil", "bob@army.ml")])
        assert answers[0].startswith("550 5.1.2")
    finally:
        r.stop()
    assert not sock_path.exists()


def test_metrics_page(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = Running(
        replace(CONFIG, policyd=replace(CONFIG.policyd, metrics_listen=f"127.0.0.1:{port}")), tmp_path
    )
    try:
        ask(r, "bob@army.ml", "bob@army.mil", "x@army.mil")
        with r.connect() as bad:
            bad.sendall(b"junk\n\n")
            closed_by_server(bad)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        r.stop()
    assert 'typoguard_policyd_decisions_total{action="reject",mode="enforce"} 1.0' in text
    assert 'typoguard_policyd_decisions_total{action="allow",mode="enforce"} 2.0' in text
    assert "typoguard_policyd_request_seconds_count 3.0" in text
    assert 'typoguard_policyd_errors_total{kind="protocol"} 1.0' in text
    assert "typoguard_policyd_connections " in text
    assert "typoguard_protected_domains 2.0" in text


def test_an_internal_error_follows_on_error(tmp_path: Path) -> None:
    for on_error, expect in (("dunno", "DUNNO"), ("tempfail", "451 4.3.0"), ("disconnect", None)):
        r = Running(replace(CONFIG, policyd=replace(CONFIG.policyd, on_error=on_error)), tmp_path)
        try:

            def broken(request: object) -> object:
                raise RuntimeError("bug")

            r.server.decider.decide = broken  # type: ignore[method-assign]
            if expect is None:
                with r.connect() as sock:
                    sock.sendall(encode_request(rcpt_request("alice@army.mil", "bob@army.ml")))
                    assert closed_by_server(sock)
            else:
                assert ask(r, "bob@army.ml")[0].startswith(expect)
            assert r.server.metrics.errors["internal"] == 1
        finally:
            r.stop()
