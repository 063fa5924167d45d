"""Release means delivered soon: ``postsuper -H`` then ``postqueue -i``; the answer says what became of it.

On a real private Postfix (``test_held_postfix.postfix_instance``) whose queue runs once an hour
(``queue_run_delay = 3600s``): ``postsuper -H`` alone would leave a released message in the deferred queue
for up to an hour. Released through the CLI and through the API (the real ``typoguard http`` process), it
must be delivered (``status=sent`` in the instance's log: ``discard:`` is its mailbox) within seconds, and
the answer must say "released, delivery attempted" with the queue state: gone, or deferred with Postfix's
reason. A failing ``postqueue -i`` after a successful ``-H`` is said, never silenced.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_held_instance import _config, _env, _exe, _served
from test_held_postfix import _send_held, _wait_held, delivered, postfix_instance  # noqa: F401 - the fixture

from typoguard.held import PostfixQueue

FAST = 10.0  # seconds: "at once" - the next queue run is an hour away


@pytest.fixture
def held_two(postfix_instance: Path) -> Iterator[tuple[Path, list[str]]]:  # noqa: F811 - the fixture
    conf = postfix_instance
    _send_held(conf, "bob@arrny.mil")
    _send_held(conf, "carol@defer.test")  # defer.test: deferred by the instance, "try later"
    yield conf, _wait_held(PostfixQueue(config_dir=str(conf)), 2)


def _recipient(conf: Path, queue_id: str) -> str:
    (m,) = [m for m in PostfixQueue(config_dir=str(conf)).messages() if m.queue_id == queue_id]
    return m.recipients[0]


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_exe(), "held", *args, "--config", str(cfg), "--by", "alice"],
        capture_output=True, text=True, timeout=120, check=False, env=_env(),
    )  # fmt: skip


def test_released_with_the_cli_is_delivered_at_once_and_says_so(
    held_two: tuple[Path, list[str]], tmp_path: Path
) -> None:
    conf, ids = held_two
    bob = next(q for q in ids if _recipient(conf, q) == "bob@arrny.mil")
    carol = next(q for q in ids if q != bob)
    cfg = _config(tmp_path, str(conf))
    started = time.monotonic()
    done = _cli(cfg, "release", bob)
    assert done.returncode == 0, done.stderr
    delivered(conf, bob, timeout=FAST)
    took = time.monotonic() - started
    assert done.stdout.startswith(f"released {bob}, delivery attempted: no longer queued"), done.stdout
    assert bob not in {m.queue_id for m in PostfixQueue(config_dir=str(conf)).messages()}
    print(f"CLI release to delivered: {took:.2f} s (queue_run_delay 3600 s)")
    # Deferred by the next hop: still queued, and the answer says why.
    done = _cli(cfg, "release", carol)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith(f"released {carol}, delivery attempted: deferred (") and "try later" in line, line
    assert line.endswith("; Postfix retries it"), line
    (m,) = [m for m in PostfixQueue(config_dir=str(conf)).messages() if m.queue_id == carol]
    assert m.queue_name == "deferred"


def test_released_through_the_api_is_delivered_at_once_and_the_answer_says_so(
    held_two: tuple[Path, list[str]], tmp_path: Path
) -> None:
    conf, ids = held_two
    bob = next(q for q in ids if _recipient(conf, q) == "bob@arrny.mil")
    carol = next(q for q in ids if q != bob)
    with _served(_config(tmp_path, str(conf))) as (client, secret):
        auth = {"Authorization": f"Bearer {secret}"}
        started = time.monotonic()
        r = client.post(f"/v1/held/{bob}/release", headers=auth)
        assert r.status_code == 200, r.text
        delivered(conf, bob, timeout=FAST)
        print(f"API release to delivered: {time.monotonic() - started:.2f} s")
        body = r.json()
        assert {k: body[k] for k in ("queue_id", "action", "by")} == {
            "queue_id": bob, "action": "release", "by": "token:admin-user",
        }  # fmt: skip
        assert body["delivery"]["attempted"] is True and body["delivery"]["queue_state"] == "gone"
        assert body["delivery"]["summary"].startswith("released, delivery attempted: no longer queued")
        r = client.post(f"/v1/held/{carol}/release", headers=auth)
        assert r.status_code == 200, r.text
        delivery = r.json()["delivery"]
        assert (delivery["attempted"], delivery["queue_state"]) == (True, "deferred"), delivery
        assert "try later" in delivery["detail"] and "try later" in delivery["summary"]
        r = client.delete(f"/v1/held/{carol}", headers=auth)
        assert r.status_code == 409, r.text  # released: no longer held


def test_a_failing_postqueue_i_is_said_and_the_message_is_still_released(
    held_two: tuple[Path, list[str]], tmp_path: Path
) -> None:
    conf, ids = held_two
    bob = next(q for q in ids if _recipient(conf, q) == "bob@arrny.mil")
    carol = next(q for q in ids if q != bob)
    # No flush service: postqueue -i fails ("mail system is down"), postsuper -H still works.
    subprocess.run(["postconf", "-c", str(conf), "-M#", "flush/unix"], check=True, timeout=30)
    subprocess.run(["postfix", "-c", str(conf), "reload"], check=True, capture_output=True, timeout=30)
    time.sleep(1)
    cfg = _config(tmp_path, str(conf))
    done = _cli(cfg, "release", bob)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"released {bob}, but delivery not attempted: cannot flush the queue of Postfix instance {conf}: "
        f"postqueue -c {conf} -i {bob} exited 69: "
    ), done.stdout
    assert "it waits in the deferred queue for the next queue run" in done.stdout
    queue = PostfixQueue(config_dir=str(conf))
    assert queue.state(bob) == ("deferred", "")  # released from hold, not delivered
    with _served(cfg) as (client, secret):
        r = client.post(f"/v1/held/{carol}/release", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200, r.text
    delivery = r.json()["delivery"]
    assert (delivery["attempted"], delivery["queue_state"]) == (False, "deferred"), delivery
    assert delivery["summary"].startswith("released, but delivery not attempted: cannot flush the queue")
    assert queue.held() == []


def test_the_relay_quarantine_answers_a_release_in_the_same_shape(tmp_path: Path) -> None:
    """A message held by ``typoguard relay`` is handed to the next hop at once: attempted, gone, and what the
    next hop refused (here a stand-in for it that refuses one recipient, as smtplib reports it)."""
    from typoguard.held import HoldQueues, Quarantine

    quarantine = Quarantine(tmp_path / "q", lambda s, r, m, o: {"x@nvy.mil": "550 5.1.1 no such user"})
    quarantine.ensure()
    qid = quarantine.put(b"Subject: a\r\n\r\na\r\n", "a@army.mil", ["b@nvy.mil", "x@nvy.mil"])
    took = "accepted by the next hop; it refused x@nvy.mil (550 5.1.1 no such user)"
    assert HoldQueues(None, quarantine).release(qid).as_dict() == {
        "attempted": True,
        "queue_state": "gone",
        "detail": took,
        "summary": f"released, delivery attempted: no longer queued ({took})",
    }
    assert quarantine.held() == []
