"""Connection and rate limits per client network, and the global session cap.

A client network is the client's IPv4 /24 or IPv6 /64 (``[sink] ipv4_prefix``/``ipv6_prefix``): one
sending provider's outbound pool shares a network, and an attacker with a /64 cannot multiply itself by
changing addresses. Rates are token buckets (capacity = one minute's allowance, refilled continuously).
The clock comes in as an argument so tests can drive it.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

from typoguard.config import SinkConfig

# Refusals at connect (RFC 5321 4.2.3: 421 = service not available, closing the channel).
BUSY = "421 4.3.2 Service busy, try again later"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your network, try again later"
TOO_FAST = "421 4.7.0 Too many connections from your network per minute, try again later"
# At RCPT: a temporary refusal the sending server retries; the sender hears of it only if it persists.
RCPT_TOO_FAST = "450 4.7.1 Too many recipients from your network, try again later"
_MAX_BUCKETS = 1 << 16  # idle buckets are dropped beyond this many networks


def network_of(ip: str, v4_prefix: int, v6_prefix: int) -> str:
    """``"192.0.2.77"`` -> ``"192.0.2.0/24"``; unparseable peers (unix sockets, tests) share one key."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "unknown"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = v4_prefix if addr.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """``take(key)`` is True while ``key`` has tokens; ``per_minute`` tokens, refilled continuously."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> bool:
        now = self.clock()
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._prune(now)
            b = self._buckets[key] = _Bucket(self.capacity, now)
        else:
            b.tokens = min(self.capacity, b.tokens + (now - b.stamp) * self.rate)
            b.stamp = now
        if b.tokens < 1.0:
            return False
        b.tokens -= 1.0
        return True

    def _prune(self, now: float) -> None:
        """Forget networks whose bucket would be full again by now (they lose nothing by it)."""
        full_after = self.capacity / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp < full_after}

    def __len__(self) -> int:
        return len(self._buckets)


class NetworkLimits:
    """Admission at connect and the RCPT rate, per client network."""

    def __init__(self, config: SinkConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_sessions = config.max_sessions
        self.per_network = config.max_connections_per_network
        self.v4, self.v6 = config.ipv4_prefix, config.ipv6_prefix
        self.connects = TokenBuckets(config.connections_per_minute_per_network, clock)
        self.rcpts = TokenBuckets(config.rcpt_per_minute_per_network, clock)
        self.sessions = 0
        self.open: dict[str, int] = {}
        self.refused: dict[str, int] = {"busy": 0, "connections": 0, "connect_rate": 0, "rcpt_rate": 0}

    def admit(self, ip: str) -> tuple[str | None, str]:
        """(refusal reply or None, network). An admitted session must be ``release``d exactly once."""
        network = network_of(ip, self.v4, self.v6)
        if self.sessions >= self.max_sessions:
            self.refused["busy"] += 1
            return BUSY, network
        if self.open.get(network, 0) >= self.per_network:
            self.refused["connections"] += 1
            return TOO_MANY_CONNECTIONS, network
        if not self.connects.take(network):
            self.refused["connect_rate"] += 1
            return TOO_FAST, network
        self.sessions += 1
        self.open[network] = self.open.get(network, 0) + 1
        return None, network

    def release(self, network: str) -> None:
        self.sessions -= 1
        left = self.open.get(network, 0) - 1
        if left > 0:
            self.open[network] = left
        else:
            self.open.pop(network, None)

    def allow_rcpt(self, network: str) -> bool:
        if self.rcpts.take(network):
            return True
        self.refused["rcpt_rate"] += 1
        return False
