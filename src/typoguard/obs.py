"""Observability for the services: JSON log lines and Prometheus metrics.

Both sit on the hot path of the policy service (one log line and a handful of counters per request, tens
of thousands of requests a second), so neither uses the general-purpose machinery per event:

* ``JsonLog`` formats each record with orjson and *buffers* it; the owner flushes a few milliseconds
  after the first record of a batch (``flush_soon`` hook; the policy service: 5 ms), so a busy service
  costs at most a couple of hundred ``write(2)`` a second, not one per request or per loop turn. The
  timestamp's seconds part is formatted once a second.
* ``PolicydMetrics`` keeps plain integers and a bucketed latency array; ``PolicydCollector`` turns them
  into Prometheus families only when scraped. prometheus-client's own ``Counter.inc()`` takes a lock and
  ``Histogram.observe()`` walks every bucket, which is measurable at this rate.
"""

from __future__ import annotations

import bisect
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, Final

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from typoguard.core.names import printable as _printable  # text orjson can encode (no lone surrogates)
from typoguard.errors import ConfigError

LEVELS: Final = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_FLUSH_AT = 1 << 16  # bytes; flush at once beyond this, whatever the owner's schedule


MAX_LOGGED_ADDRESS: Final = 254  # the longest address a path can carry (RFC 5321 4.5.3.1.3)
_CLIPPED_PREFIX: Final = 64


def clip_address(text: str) -> str:
    """An address as the decision log and the store keep it: whole up to ``MAX_LOGGED_ADDRESS`` characters;
    a longer one cannot be valid, and a client must not make us write 8 KB a request to disk: its first 64
    characters, then ``...[truncated, N chars]`` (N its whole length)."""
    if len(text) <= MAX_LOGGED_ADDRESS:
        return text
    return f"{text[:_CLIPPED_PREFIX]}...[truncated, {len(text)} chars]"


class JsonLog:
    """JSON lines (one object per line, ``time`` first) to a file or standard error, buffered."""

    def __init__(self, *, level: str = "info", path: str = "", stream: IO[bytes] | None = None) -> None:
        if level not in LEVELS:
            raise ConfigError(f"[log] level must be one of {', '.join(LEVELS)}, got {level!r}")
        self.threshold = LEVELS[level]
        self.path = path
        self._stream = stream
        self._fd = self._open()
        self._chunks: list[bytes] = []
        self._size = 0
        self._sec = -1
        self._sec_text = ""
        self._ms = -1
        self._ms_text = b""
        self.flush_soon: Callable[[], None] | None = None  # set by an event loop owner
        self.write_errors = 0

    def _open(self) -> int:
        if self._stream is not None:
            return self._stream.fileno()
        if not self.path:
            return sys.stderr.fileno()
        try:
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise ConfigError(f"[log] file {self.path}: {exc.strerror or exc}") from None

    def reopen(self) -> None:
        """Reopen the log file (after logrotate moved it); standard error is left alone."""
        if not self.path or self._stream is not None:
            return
        self.flush()
        fd = self._open()
        old, self._fd = self._fd, fd
        os.close(old)

    def close(self) -> None:
        self.flush()
        if self.path and self._stream is None:
            os.close(self._fd)

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def timestamp(self) -> bytes:
        """UTC, millisecond precision, ISO 8601 (``2026-11-27T00:27:31.450Z``); formatted once per ms."""
        ms = int(time.time() * 1000)
        if ms != self._ms:
            self._ms = ms
            sec, frac = divmod(ms, 1000)
            if sec != self._sec:
                self._sec = sec
                self._sec_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            self._ms_text = f"{self._sec_text}.{frac:03d}Z".encode()
        return self._ms_text

    def record(self, fields: dict[str, Any]) -> None:
        """Queue one record; ``fields`` should not hold ``time`` (it is put first here)."""
        try:
            body = orjson.dumps(fields)
        except TypeError:  # a str with lone surrogates (invalid UTF-8 from the wire), or an odd type
            clean = {k: _printable(v) if isinstance(v, str) else v for k, v in fields.items()}
            body = orjson.dumps(clean, default=str)
        # {"time":"...",<the fields>}: spliced as bytes rather than copying the dict
        line = b'{"time":"' + self.timestamp() + (b'",' + body[1:] if len(body) > 2 else b'"}') + b"\n"
        self._chunks.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_AT or self.flush_soon is None:
            self.flush()
        elif len(self._chunks) == 1:
            self.flush_soon()

    def record_json(self, body: bytes) -> None:
        """Queue one record already serialised as a JSON object (without ``time``: it is put first here)."""
        self.append_line(b'{"time":"' + self.timestamp() + b'",' + body[1:] + b"\n")

    def line(self, body: bytes) -> bytes:
        """The log line for a record serialised as a JSON object without ``time``."""
        return b'{"time":"' + self.timestamp() + b'",' + body[1:] + b"\n"

    def append_line(self, line: bytes) -> None:
        """Queue one complete line (see ``line``)."""
        self._chunks.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_AT or self.flush_soon is None:
            self.flush()
        elif len(self._chunks) == 1:
            self.flush_soon()

    def event(self, level: str, event: str, **fields: Any) -> None:
        """A non-decision record (startup, reload, errors)."""
        if LEVELS[level] >= self.threshold:
            self.record({"level": level, "event": event, **fields})

    def flush(self) -> None:
        if not self._chunks:
            return
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        try:
            while data:
                n = os.write(self._fd, data)
                data = data[n:]
        except OSError:
            # The log sink is gone (closed pipe, full disk). Deciding goes on; the metric shows it.
            self.write_errors += 1


# Latency buckets in seconds: the interesting range of a local policy answer is 10 us .. 10 ms.
LATENCY_BUCKETS: Final = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
)  # fmt: skip


class PolicydMetrics:
    """Counters of the policy service as plain numbers (single-threaded: only the event loop writes)."""

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str], int] = {}  # (action, mode) -> count
        self.errors: dict[str, int] = {}  # kind -> count
        self.reloads: dict[str, int] = {"ok": 0, "failed": 0}
        self.connections_open = 0
        self.connections_total = 0
        self.connections_refused = 0
        self.connections_shed: dict[str, int] = {}  # reason (per_client, max_connections) -> count
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.config_loaded_at = time.time()
        self.protected_domains = 0

    feed: Any = None  # a store.feed.DecisionFeed when decisions are stored (its backlog is exported)

    def decision(self, action: str, mode: str, seconds: float) -> None:
        key = (action, mode)
        self.decisions[key] = self.decisions.get(key, 0) + 1
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class PolicydCollector(Collector):
    """Exposes a ``PolicydMetrics`` in Prometheus' text format at scrape time."""

    def __init__(self, metrics: PolicydMetrics, log: JsonLog | None = None) -> None:
        self.metrics = metrics
        self.log = log

    def collect(self) -> Iterator[Any]:
        m = self.metrics
        decisions = CounterMetricFamily(
            "typoguard_policyd_decisions",
            "Policy requests answered, by verdict action and mode",
            labels=["action", "mode"],
        )
        for (action, mode), n in sorted(dict(m.decisions).items()):
            decisions.add_metric([action, mode], n)
        yield decisions
        errors = CounterMetricFamily(
            "typoguard_policyd_errors", "Connections dropped or requests failed, by kind", labels=["kind"]
        )
        for kind, n in sorted(dict(m.errors).items()):
            errors.add_metric([kind], n)
        if self.log is not None and self.log.write_errors:
            errors.add_metric(["log_write"], self.log.write_errors)
        yield errors
        counts = list(m.latency_counts)
        buckets, running = [], 0
        for bound, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), counts, strict=True):
            running += n
            buckets.append((bound, running))
        yield HistogramMetricFamily(
            "typoguard_policyd_request_seconds",
            "Time to decide one policy request (server side)",
            buckets=buckets,
            sum_value=m.latency_sum,
        )
        yield GaugeMetricFamily(
            "typoguard_policyd_connections", "Open policy connections", m.connections_open
        )
        yield CounterMetricFamily(
            "typoguard_policyd_connections_accepted", "Policy connections accepted", m.connections_total
        )
        yield CounterMetricFamily(
            "typoguard_policyd_connections_refused",
            "Connections closed at once: draining, or full and every connection in the middle of a request",
            m.connections_refused,
        )
        shed = CounterMetricFamily(
            "typoguard_policyd_connections_shed",
            "Idle connections closed to make room for a new one, by the cap that was reached",
            labels=["reason"],
        )
        for reason, n in sorted(m.connections_shed.items()):
            shed.add_metric([reason], n)
        yield shed
        reloads = CounterMetricFamily(
            "typoguard_policyd_reloads", "Config reloads (SIGHUP)", labels=["result"]
        )
        for result, n in sorted(m.reloads.items()):
            reloads.add_metric([result], n)
        yield reloads
        yield GaugeMetricFamily(
            "typoguard_config_loaded_timestamp_seconds",
            "When the active config was loaded",
            m.config_loaded_at,
        )
        yield GaugeMetricFamily(
            "typoguard_protected_domains", "Protected domains in the active index", m.protected_domains
        )
        feed = m.feed
        if feed is not None:  # the decision store's writer process (typoguard serve with [store])
            spool = feed.spool_bytes()
            unsaved = feed.pending_bytes
            yield GaugeMetricFamily(
                "typoguard_store_backlog_bytes",
                "Decision bytes not yet stored: in the service's memory, with the writer, in the spool",
                unsaved + feed.unacked_bytes + spool,
            )
            yield GaugeMetricFamily(
                "typoguard_store_spool_bytes", "Decision bytes waiting in the spool directory", spool
            )
            yield GaugeMetricFamily(
                "typoguard_store_unsaved_bytes",
                "Decision bytes only in the service's memory (lost if the service is killed with -9)",
                unsaved,
            )
            yield CounterMetricFamily(
                "typoguard_store_spilled_bytes",
                "Decision log bytes written to the spool directory because the writer lagged",
                feed.spilled,
            )
            yield CounterMetricFamily(
                "typoguard_store_writer_restarts", "Decision writer processes restarted", feed.restarts
            )
            yield GaugeMetricFamily(
                "typoguard_store_writer_up", "1 if the writer process runs", int(feed.alive)
            )


def metrics_registry(metrics: PolicydMetrics, log: JsonLog | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PolicydCollector(metrics, log))
    return registry


def parse_listen(text: str, what: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) -> (host, port); raises ``ConfigError``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what} must be host:port or unix:/path, got {text!r}")
    return host, int(port)
