"""``POST /v1/check``'s reply: request JSON in, the verdicts' JSON out, counted for ``/metrics``.

The one endpoint on a mail client's path (it asks when its user presses Send), so it is built to cost a
few microseconds per recipient on top of the detector's own look-up:

* A verdict's JSON after its ``"recipient"`` depends only on its ``Assessment``, which the detector caches
  per domain and shares between recipients: each is serialised once and spliced in (the reply is byte for
  byte ``orjson.dumps`` of ``Verdict.to_dict()``s; tested).
* The verdict counts and the latency histogram are plain integers, written only by the event loop and
  turned into Prometheus families when ``/metrics`` is read (``CheckMetrics``): prometheus_client's own
  counters take a lock per increment, ~2 us per request here.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator

import orjson
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from typoguard.core.verdict import Action, Assessment, Verdict
from typoguard.service import Guard

# Mildest first (``Action``'s order); a message's overall action is its worst recipient's, and an address
# that cannot be parsed ("invalid") outranks them all: the client must have it fixed before sending.
ACTION_ORDER = [a.value for a in Action]
MAX_RECIPIENTS = 1000
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


class CheckReplies:
    """Builds ``POST /v1/check`` replies and counts them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.metrics = CheckMetrics(registry)
        # id(assessment) -> (the assessment, kept so that the id stays its own; its JSON tail; its action
        # and that action's rank in ACTION_ORDER)
        self._tails: dict[int, tuple[Assessment, bytes, str, int]] = {}
        self._tails_of: Guard | None = None

    def reply(self, guard: Guard, body: bytes) -> bytes:
        """The JSON reply to request ``body`` under ``guard``; ``MalformedCheck`` when the body is not
        ``{"sender"?: str, "recipients": [str, ...]}`` with 1 to ``MAX_RECIPIENTS`` recipients."""
        started = time.perf_counter()
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedCheck("the body must be a JSON object") from exc
        if not isinstance(request, dict):
            raise MalformedCheck("the body must be a JSON object")
        recipients = request.get("recipients")
        sender = request.get("sender", "")
        if not isinstance(sender, str):
            raise MalformedCheck("sender must be a string")
        if not isinstance(recipients, list) or not recipients or not all(type(r) is str for r in recipients):
            raise MalformedCheck("recipients must be a non-empty list of addresses")
        if len(recipients) > MAX_RECIPIENTS:
            raise MalformedCheck(f"at most {MAX_RECIPIENTS} recipients per request")
        if self._tails_of is not guard:  # a reload: new assessments
            self._tails.clear()
            self._tails_of = guard
        tails = self._tails
        counts = self.metrics.verdicts
        parts = []
        worst = 0
        assess = guard.detector.assess  # what guard.check(recipient) rests on
        for recipient in recipients:
            assessment = assess(recipient)
            known = tails.get(id(assessment))
            if known is None or known[0] is not assessment:
                action = assessment.action.value
                known = (assessment, _verdict_tail(assessment), action, ACTION_ORDER.index(action))
                if len(tails) >= 65_536:
                    tails.clear()
                tails[id(assessment)] = known
            parts.append(b'{"recipient":' + orjson.dumps(recipient) + known[1])
            counts[known[2]] += 1
            if known[3] > worst:  # noqa: PLR1730 - a call to max() costs more
                worst = known[3]
        # Byte for byte orjson.dumps({"sender", "action", "verdicts": [Verdict.to_dict(), ...]}) (tested).
        reply = b"".join(
            (b'{"sender":', orjson.dumps(sender), b',"action":"', ACTION_ORDER[worst].encode(),
             b'","verdicts":[', b",".join(parts), b"]}")
        )  # fmt: skip
        self.metrics.observe(time.perf_counter() - started)
        return reply
