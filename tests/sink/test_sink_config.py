"""``[sink]`` configuration checks, the per-domain answer and the network limits (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from running_sink import write_config

from typoguard.config import load_config
from typoguard.errors import ConfigError
from typoguard.guard import Guard
from typoguard.obs import JsonLog
from typoguard.sink.answer import NOT_OURS, Answerer
from typoguard.sink.limits import NetworkLimits, TokenBuckets, network_of
from typoguard.sink.server import SinkServer


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("reject_template", "<{recipient}> {nope}", "bad placeholder"),
        ("neutral_template", "{intended_address}", "bad placeholder"),
        ("reject_template", "line\r\nbreak", "printable ASCII"),
        ("tls_cert", "cert.pem", "go together"),
        ("retention", "forever", "not a duration"),
        ("listen", ["localhost"], "host:port"),
        ("min_score", 1.5, "within 0..1"),
        ("max_sessions", 0, "at least 1"),
        ("ipv6_prefix", 8, "ipv6_prefix"),
        ("domains", ["not a domain!"], "[sink] domains"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config = load_config(write_config(tmp_path, **{key: value}))
        Answerer.from_config(config)


def test_a_sink_that_answers_for_nothing_does_not_start(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, domains=[], lookalikes_of=[]))
    with pytest.raises(ConfigError, match="answers for nothing"):
        SinkServer.build(config, JsonLog(level="error"))


def test_answers(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, domains=["gmial.com=gmail.com", "odd.example"]))
    answerer = Answerer.from_config(config)
    assert answerer.answer("bob@army.mil").reply == NOT_OURS  # protected itself
    assert answerer.answer("bob@gmx.com").reply == NOT_OURS  # a real neighbour, not a typo
    assert answerer.answer("bob@example.com").lookalike is None
    a = answerer.answer("bob@ARMY.ML.")
    assert (a.lookalike, a.intended) == ("army.ml", "army.mil")
    assert a.reply.startswith("550 5.1.2 <bob@army.ml>") and "<bob@army.mil>" in a.reply
    assert answerer.answer("bob@gmial.com").intended == "gmail.com"
    neutral = answerer.answer("x@sub.odd.example")
    assert (neutral.lookalike, neutral.intended) == ("sub.odd.example", None)
    assert answerer.answer("no-at-sign").reply.startswith("501")


def test_lookalikes_of_narrows_the_targets(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, lookalikes_of=["navy.mil"], domains=[]))
    answerer = Answerer.from_config(config)
    assert answerer.answer("bob@army.ml").lookalike is None  # army.mil is protected, but not the sink's
    assert answerer.answer("bob@navy.ml").intended == "navy.mil"
    assert isinstance(answerer.guard, Guard)


def test_networks() -> None:
    assert network_of("192.0.2.77", 24, 64) == "192.0.2.0/24"
    assert network_of("::ffff:192.0.2.77", 24, 64) == "192.0.2.0/24"
    assert network_of("2001:db8:1:2:3:4:5:6", 24, 64) == "2001:db8:1:2::/64"
    assert network_of("", 24, 64) == "unknown"


def test_token_bucket_refills_with_time() -> None:
    now = [0.0]
    buckets = TokenBuckets(60, lambda: now[0])  # one a second
    assert all(buckets.take("n") for _ in range(60))
    assert not buckets.take("n")
    now[0] += 1.0
    assert buckets.take("n") and not buckets.take("n")
    assert buckets.take("other")


def test_admission_counts_and_releases(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, max_sessions=3, max_connections_per_network=2))
    limits = NetworkLimits(config.sink, clock=lambda: 0.0)
    assert limits.admit("192.0.2.1") == (None, "192.0.2.0/24")
    assert limits.admit("192.0.2.2")[0] is None
    assert limits.admit("192.0.2.3")[0].startswith("421 4.7.0")  # type: ignore[union-attr]
    assert limits.admit("198.51.100.1")[0] is None
    assert limits.admit("203.0.113.1")[0].startswith("421 4.3.2")  # type: ignore[union-attr]
    limits.release("192.0.2.0/24")
    assert limits.admit("192.0.2.9")[0] is None
    assert limits.refused == {"busy": 1, "connections": 1, "connect_rate": 0, "rcpt_rate": 0}


def test_cli_without_anything_to_answer_for_exits_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from typoguard.cli import main

    path = write_config(tmp_path, domains=[], lookalikes_of=[])
    result = CliRunner().invoke(main, ["sink", "--config", str(path)])
    assert result.exit_code == 2 and "answers for nothing" in result.output
    assert "report" in CliRunner().invoke(main, ["sink", "--help"]).output
