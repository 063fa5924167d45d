"""The issue's run, repeatable: real Postfix sends N messages of 3 recipients through the relay to a next hop
that picks a fault for each session at random (half of them behave). Counts what Postfix did with each
recipient on its first attempt and checks that nothing is lost. Needs root and Postfix; not a test (it
runs for tens of seconds), run by hand:

    flock -x /tmp/tg-machine.lock .venv/bin/python tests/relay/random_faults_run.py 300

Prints one JSON line: sent, deferred, bounced_by_hop (the next hop's own 5xx), bounced_otherwise (must be
0), no_status (Postfix logged nothing for it within 60 s), lost (must be 0: a recipient neither delivered
by the next hop nor in Postfix's deferred queue, nor bounced by the next hop), seconds.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _dir in (HERE, HERE.parent / "audit"):
    sys.path.insert(0, str(_dir))

from audit_postfix_lab import postfix_lab_dir  # noqa: E402
from fault_hop import FAULTS, HOP_NO, FaultHop  # noqa: E402
from relay_lab import RunningRelay, write_config  # noqa: E402
from test_relay_postfix_faults import RECIPIENTS, SendingPostfix, submit  # noqa: E402


def main(n: int, seed: int = 15) -> dict[str, float]:
    rng = random.Random(seed)
    faults = [f for f in FAULTS if f not in ("ok", "refuse")]
    counts = {"messages": n, "recipients": n * len(RECIPIENTS), "sent": 0, "deferred": 0,
              "bounced_by_hop": 0, "bounced_otherwise": 0, "no_status": 0, "lost": 0}  # fmt: skip
    with postfix_lab_dir("typoguard-relay-random-") as root:
        hop = FaultHop(choose=lambda: "ok" if rng.random() < 0.5 else rng.choice(faults)).start()
        (root / "relay").mkdir()
        relay = RunningRelay(write_config(root / "relay", hop.port, relay={"next_hop_timeout": 1.0}))
        postfix = SendingPostfix(root, relay.port)
        try:
            postfix.start()
            start = time.monotonic()
            qids = {submit(postfix, f"random {i}"): i for i in range(n)}
            deadline = time.monotonic() + 60
            while True:
                statuses = {qid: postfix.statuses(qid) for qid in qids}
                if all(len(s) == len(RECIPIENTS) for s in statuses.values()):
                    break
                if time.monotonic() > deadline:  # counted below as "no_status" (and lost if not queued)
                    break
                time.sleep(0.5)
            counts["seconds"] = round(time.monotonic() - start, 1)
            time.sleep(1)  # the deferred queue files are moved after the log line
            taken: dict[str, set[str]] = {}
            for m in hop.delivered:
                subject = m.content.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                taken.setdefault(subject, set()).update(m.rcpt_tos)
            for qid, i in qids.items():
                waiting = postfix.deferred(qid)
                for rcpt in set(RECIPIENTS) - set(statuses[qid]):
                    counts["no_status"] += 1
                    counts["lost"] += rcpt not in waiting
                for rcpt, (status, words) in statuses[qid].items():
                    if status == "bounced":
                        counts["bounced_by_hop" if HOP_NO in words else "bounced_otherwise"] += 1
                        if HOP_NO not in words:
                            print(f"bounced otherwise: {qid} {rcpt}: {words}", file=sys.stderr)
                        continue
                    counts[status] += 1
                    kept = rcpt in taken.get(f"random {i}", set()) if status == "sent" else rcpt in waiting
                    if not kept:
                        counts["lost"] += 1
                        print(f"lost: {qid} {rcpt} {status}: {words}", file=sys.stderr)
        finally:
            postfix.stop()
            relay.stop()
            hop.stop()
    return counts


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)))
