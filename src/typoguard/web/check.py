"""``POST /v1/check``'s reply: request JSON in, the verdicts' JSON out, counted for ``/metrics``.

The one endpoint on a mail client's path (it asks when its user presses Send), so it is built to cost a
few microseconds per recipient on top of the detector's own look-up:

* A verdict's JSON after its ``"recipient"`` depends only on its ``Assessment``, which the detector caches
  per domain and shares between recipients: each is serialised once and spliced in (the reply is byte for
  byte ``orjson.dumps`` of ``Verdict.to_dict()``s; tested).
* The verdict counts and the latency histogram are plain integers, written only by the event loop and
  turned into Prometheus families when ``/metrics`` is read (``CheckMetrics``): prometheus_client's own
  counters take a lock per increment, ~2 us per request here.

It also runs in ``typoguard serve``'s event loop, next to Postfix's policy answers, and a request may be
hostile: up to ``[http] max_recipients`` names, each costing the detector up to ~1.5 ms (unseen names in
several scripts). So the work of all requests together takes at most ``LoopBudget.SECONDS`` of each pass
of the event loop (``LoopBudget``): a request that would take more yields between recipients and goes on
in the next pass, after the loop has answered whatever else is waiting (ADR 0015).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Iterator

import orjson
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from typoguard.core.detector import assessment_bytes
from typoguard.core.memo import IdentityMemo
from typoguard.core.verdict import Action, Assessment, Verdict
from typoguard.guard import Guard

# The actions by severity (``Action.severity`` is the index), the order of the JSON counters too; a
# message's overall action is its most severe recipient's ("invalid" outranks them all: the client must
# have the address fixed before sending).
ACTION_ORDER = [a.value for a in Action]
TAIL_CACHE_BYTES = 8 << 20  # the verdict JSON prepared per assessment (a few hundred bytes each)
MAX_RECIPIENTS = 1000  # the default of [http] max_recipients
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1)  # seconds
_NO_RECIPIENT = b'{"recipient":""'


class MalformedCheck(ValueError):
    """The request body is not what ``POST /v1/check`` takes (the API answers 400 with this message)."""


class CheckMetrics(Collector):
    """``typoguard_http_verdicts_total{action}`` and ``typoguard_http_check_seconds`` (a histogram), the
    same families prometheus_client's ``Counter`` and ``Histogram`` would give."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.created = time.time()
        self.verdicts = dict.fromkeys(ACTION_ORDER, 0)
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: +Inf
        self.seconds = 0.0
        registry.register(self)

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le: less than or equal
        self.seconds += seconds

    def collect(self) -> Iterator[Metric]:
        verdicts = CounterMetricFamily(
            "typoguard_http_verdicts", "Verdicts given by POST /v1/check", labels=["action"]
        )
        for action, n in self.verdicts.items():
            verdicts.add_metric([action], n, created=self.created)
        yield verdicts
        cumulative, total = [], 0
        for le, n in zip((*map(floatToGoString, LATENCY_BUCKETS), "+Inf"), self.buckets, strict=True):
            total += n
            cumulative.append((le, float(total)))
        latency = HistogramMetricFamily(
            "typoguard_http_check_seconds",
            "POST /v1/check latency",
            buckets=cumulative,
            sum_value=self.seconds,
        )
        latency.samples.append(Sample("typoguard_http_check_seconds_created", {}, self.created))
        yield latency


def _verdict_tail(assessment: Assessment) -> bytes:
    """``Verdict(r, assessment).to_dict()`` as JSON, without its opening ``{"recipient":"..."``."""
    full = orjson.dumps(Verdict("", assessment).to_dict())
    if not full.startswith(_NO_RECIPIENT):
        raise AssertionError(f"Verdict.to_dict() no longer starts with the recipient: {full[:40]!r}")
    return full[len(_NO_RECIPIENT) :]


def _prepared(a: Assessment) -> tuple[bytes, str, int]:
    return _verdict_tail(a), a.action.value, a.action.severity


def _prepared_bytes(a: Assessment, prepared: tuple[bytes, str, int]) -> int:
    return assessment_bytes("", a) + len(prepared[0]) + 120


class LoopBudget:
    """How much of one pass of the event loop /v1/check may take, all requests together.

    Work is charged as it is done; once a pass's share is spent, every request waits (``await
    turn()``) until the next pass, which begins by resetting the account: a callback scheduled with
    ``call_soon`` when the first work of a pass is charged runs before the requests that yielded after
    it. Between two passes the loop polls its sockets and answers the policy clients that are waiting.
    So the loop is never held by check work for more than ``SECONDS`` plus one recipient's cost."""

    SECONDS = 0.001

    def __init__(self) -> None:
        self.spent = 0.0
        self._reset_due = False

    def _reset(self) -> None:
        self.spent = 0.0
        self._reset_due = False

    def charge(self, seconds: float) -> None:
        self.spent += seconds
        if not self._reset_due:
            self._reset_due = True
            asyncio.get_running_loop().call_soon(self._reset)

    async def turn(self) -> None:
        """Return when this pass has budget left (at once, usually)."""
        while self.spent >= self.SECONDS:
            await asyncio.sleep(0)


class CheckReplies:
    """Builds ``POST /v1/check`` replies and counts them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.metrics = CheckMetrics(registry)
        # per assessment: its JSON tail, its action and that action's severity
        self._tails: IdentityMemo[Assessment, tuple[bytes, str, int]] = IdentityMemo(
            _prepared, TAIL_CACHE_BYTES, _prepared_bytes, self._retained
        )
        self._tails_of: Guard | None = None

    def _retained(self, a: Assessment) -> bool:
        """Whether the detector keeps ``a`` (an assessment of a name seen once is prepared, not kept)."""
        return self._tails_of is not None and self._tails_of.detector.retains(a)

    async def reply(
        self, guard: Guard, body: bytes, budget: LoopBudget, max_recipients: int = MAX_RECIPIENTS
    ) -> bytes:
        """The JSON reply to request ``body`` under ``guard``; ``MalformedCheck`` when the body is not
        ``{"sender"?: str, "recipients": [str, ...]}`` with 1 to ``max_recipients`` recipients. The work
        is charged to ``budget`` and yields to the event loop when its share of the pass is spent."""
        started = time.perf_counter()
        await budget.turn()
        began = time.perf_counter()
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedCheck("the body must be a JSON object") from exc
        finally:
            budget.charge(time.perf_counter() - began)
        if not isinstance(request, dict):
            raise MalformedCheck("the body must be a JSON object")
        recipients = request.get("recipients")
        sender = request.get("sender", "")
        if not isinstance(sender, str):
            raise MalformedCheck("sender must be a string")
        if not isinstance(recipients, list) or not recipients or not all(type(r) is str for r in recipients):
            raise MalformedCheck("recipients must be a non-empty list of addresses")
        if len(recipients) > max_recipients:
            raise MalformedCheck(f"at most {max_recipients} recipients per request ([http] max_recipients)")
        parts = []
        worst = 0
        began = time.perf_counter()
        for recipient in recipients:
            if self._tails_of is not guard:  # a reload (also while this request waited): new assessments
                self._tails.clear()
                self._tails_of = guard
            part, rank = self._verdict(guard, recipient)
            parts.append(part)
            if rank > worst:  # noqa: PLR1730 - a call to max() costs more
                worst = rank
            now = time.perf_counter()
            if budget.spent + (now - began) >= budget.SECONDS:
                budget.charge(now - began)
                await budget.turn()
                began = time.perf_counter()
        # Byte for byte orjson.dumps({"sender", "action", "verdicts": [Verdict.to_dict(), ...]}) (tested).
        reply = b"".join(
            (b'{"sender":', orjson.dumps(sender), b',"action":"', ACTION_ORDER[worst].encode(),
             b'","verdicts":[', b",".join(parts), b"]}")
        )  # fmt: skip
        now = time.perf_counter()
        budget.charge(now - began)
        self.metrics.observe(now - started)
        return reply

    def _verdict(self, guard: Guard, recipient: str) -> tuple[bytes, int]:
        """One recipient's verdict JSON and its action's rank; counted for ``/metrics``."""
        a = guard.detector.assess(recipient)  # what guard.check(recipient) rests on
        tails = self._tails
        hit = tails.new.get(id(a))  # the memo's probe, inlined: this runs per recipient
        tail, action, severity = hit[1] if hit is not None and hit[0] is a else tails.miss(a)
        self.metrics.verdicts[action] += 1
        return b'{"recipient":' + orjson.dumps(recipient) + tail, severity
