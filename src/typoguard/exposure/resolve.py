"""Asking the DNS about look-alikes: dnspython's asyncio resolver with bounded concurrency, timeouts and
retries, and as few queries as the answer needs.

Per name: ``MX`` first. NXDOMAIN ends it (one query for the usual, unregistered look-alike). MX records end
it too, but for the name servers of the registrable domain. Only without MX are ``A`` (then ``AAAA``) asked,
for the implicit MX of RFC 5321. A look-alike below its registrable domain (``ar.my.mil``) first asks the
registrable domain's ``NS``; NXDOMAIN there answers for every name below it, and the answer is shared.

Third-party exceptions stop here: a name that cannot be resolved becomes a ``DnsAnswers`` with ``error``
set (reported as "unknown", never as safe); bad settings raise ``ConfigError``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from typoguard.config import parse_host_port
from typoguard.errors import ConfigError
from typoguard.exposure.model import DnsAnswers

Registrable = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class ResolverSettings:
    """How to ask. ``nameservers`` empty: the system's (``/etc/resolv.conf``)."""

    nameservers: tuple[str, ...] = ()
    port: int = 53
    timeout: float = 2.0  # seconds per attempt
    retries: int = 2  # further attempts after a timeout
    concurrency: int = 200  # queries in flight at most

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigError(f"resolver timeout must be positive, got {self.timeout}")
        if self.retries < 0:
            raise ConfigError(f"resolver retries must be zero or more, got {self.retries}")
        if not 1 <= self.concurrency <= 10_000:
            raise ConfigError(f"resolver concurrency must be 1..10000, got {self.concurrency}")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"resolver port must be 1..65535, got {self.port}")
        for ns in self.nameservers:
            try:
                ipaddress.ip_address(ns)
            except ValueError:
                raise ConfigError(f"resolver {ns!r} is not an IP address") from None


def parse_resolver(text: str) -> tuple[str, int | None]:
    """``192.0.2.53``, ``192.0.2.53:5353``, ``2001:db8::53``, ``[2001:db8::53]`` or ``[2001:db8::53]:5353``
    -> (address, port or None). An address with a port is read as every other address is."""
    text = text.strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if _is_ip(bare):
        return bare, None
    host, port = (text, None) if ":" not in text else parse_host_port(text, "resolver", min_port=1)
    if not _is_ip(host):
        raise ConfigError(f"resolver {text!r} is not an IP address (with an optional :port)")
    return host, port


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Reply:
    """One question's outcome: NXDOMAIN, the record values (empty: NODATA), or why there is no answer."""

    nxdomain: bool = False
    values: tuple[str, ...] = ()
    error: str = ""


class ExposureResolver:
    """Resolves look-alikes; one instance per event loop. ``queries`` counts every attempt sent."""

    def __init__(self, settings: ResolverSettings, registrable: Registrable) -> None:
        self.settings = settings
        self.registrable = registrable
        try:
            resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
        except (dns.resolver.NoResolverConfiguration, OSError) as exc:
            raise ConfigError(f"no system resolver configured ({exc}); give --resolver ADDRESS") from None
        if settings.nameservers:
            resolver.nameservers = list(settings.nameservers)
        resolver.port = settings.port
        resolver.timeout = settings.timeout
        resolver.lifetime = settings.timeout
        resolver.cache = None
        self._resolver = resolver
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._ns: dict[str, asyncio.Task[Reply]] = {}
        self.queries = 0
        self.peak_in_flight = 0  # the most queries that were ever in flight together
        self.lie = ""  # set by resolve_many when a canary (a name that exists) got NXDOMAIN
        self._in_flight = 0

    def describe(self) -> str:
        """The servers asked, for messages: ``127.0.0.1:5353`` or ``the system resolver (192.0.2.53)``."""
        servers = [str(ns) for ns in self._resolver.nameservers]
        if self.settings.nameservers:
            port = f":{self.settings.port}" if self.settings.port != 53 else ""
            return ", ".join(f"[{s}]{port}" if ":" in s and port else f"{s}{port}" for s in servers)
        return f"the system resolver ({', '.join(servers) or 'none configured'})"

    async def ask(self, name: str, rdtype: dns.rdatatype.RdataType) -> Reply:
        """One question (with the retries), counted in ``queries``; never raises for DNS trouble."""
        return await self._query(name, rdtype)

    async def _query(self, name: str, rdtype: dns.rdatatype.RdataType) -> Reply:
        """One question, with retries after timeouts; never raises for DNS trouble."""
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:  # a label over 63 octets: no server can be asked
            return Reply(error=f"{name!r} cannot be asked: {exc}")
        error = ""
        for _attempt in range(self.settings.retries + 1):
            async with self._slots:
                self.queries += 1
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
                try:
                    answer = await self._resolver.resolve(
                        qname, rdtype, search=False, raise_on_no_answer=False
                    )
                except dns.resolver.NXDOMAIN:
                    return Reply(nxdomain=True)
                except dns.resolver.LifetimeTimeout:
                    error = f"no answer to {rdtype.name} within {self.settings.timeout:g} s"
                    continue
                except dns.resolver.NoNameservers as exc:
                    # SERVFAIL/REFUSED from every server: retrying at once rarely helps; report it.
                    return Reply(error=f"{rdtype.name}: {_server_failure(exc)}")
                except dns.exception.DNSException as exc:
                    return Reply(error=f"{rdtype.name}: {exc}")
                finally:
                    self._in_flight -= 1
            if answer.rrset is None:
                return Reply()
            return Reply(values=tuple(_text(rdtype, rd) for rd in answer.rrset))
        attempts = self.settings.retries + 1
        return Reply(error=f"{error} ({attempts} attempt{'s' if attempts > 1 else ''})")

    def _ns_of(self, domain: str) -> asyncio.Task[Reply]:
        """The NS answer of a registrable domain, asked once and shared by every look-alike below it."""
        task = self._ns.get(domain)
        if task is None:
            task = asyncio.ensure_future(self._query(domain, dns.rdatatype.NS))
            self._ns[domain] = task
        return task

    async def resolve(self, name: str) -> DnsAnswers:
        """What the DNS says about ``name`` (ASCII form), asking only what the answer needs."""
        start = self.queries
        reg = self.registrable(name) or name
        ns = Reply()
        if reg != name:
            ns = await self._ns_of(reg)
            if ns.nxdomain:
                return DnsAnswers(name, nxdomain=True, queries=self.queries - start)
        mx = await self._query(name, dns.rdatatype.MX)
        if mx.nxdomain:
            return DnsAnswers(name, nxdomain=True, queries=self.queries - start)
        if mx.error:  # the server is in trouble: asking it more about this name would only wait longer
            return DnsAnswers(name, error=mx.error, queries=self.queries - start)
        addresses: tuple[str, ...] = ()
        error = ""
        if not mx.values:
            a = await self._query(name, dns.rdatatype.A)
            addresses, error = a.values, a.error
            if not addresses and not error:
                aaaa = await self._query(name, dns.rdatatype.AAAA)
                addresses, error = aaaa.values, aaaa.error
        if reg == name:
            ns = await self._ns_of(reg)
        mx_records = tuple(sorted((int(p), h) for p, h in (v.split(" ", 1) for v in mx.values)))
        return DnsAnswers(
            name,
            mx=mx_records,
            addresses=addresses,
            ns=tuple(sorted(ns.values)),
            error=error,
            queries=self.queries - start,
        )

    async def resolve_many(
        self,
        names: Iterable[str],
        on_result: Callable[[DnsAnswers], None] | None = None,
        canaries: Sequence[str] = (),
    ) -> dict[str, DnsAnswers]:
        """Resolve every name with at most ``concurrency`` names in progress; ``on_result`` per name.

        ``canaries`` are names known to exist (the protected domains): one of them is asked again after
        every ``canary_interval`` names. NXDOMAIN for it means the resolver is lying now; the scan stops
        and ``lie`` says what was seen (the caller refuses the results: any NXDOMAIN may be that lie).
        """
        todo = list(dict.fromkeys(names))
        pending = iter(todo)
        results: dict[str, DnsAnswers] = {}
        every = canary_interval(len(todo))
        done = 0

        async def worker() -> None:
            nonlocal done
            for name in pending:  # the shared iterator hands each name to exactly one worker
                if self.lie:
                    return
                answers = await self.resolve(name)
                results[name] = answers
                if on_result is not None:
                    on_result(answers)
                done += 1
                if canaries and done % every == 0:
                    canary = canaries[(done // every) % len(canaries)]
                    if (await self._query(canary, dns.rdatatype.MX)).nxdomain:
                        self.lie = self.lie or f"{canary} MX: NXDOMAIN after {done} look-alikes"

        try:
            await asyncio.gather(*(worker() for _ in range(self.settings.concurrency)))
        finally:
            for task in self._ns.values():
                task.cancel()
        return results


def canary_interval(names: int) -> int:
    """Names between two canary questions: ~50 canaries a scan, one per 10 to 1,000 names (0.1% extra
    queries on a large scan, a lying window of ~0.3 s at 3,000 queries/s is still seen)."""
    return min(1000, max(10, names // 50))


def _text(rdtype: dns.rdatatype.RdataType, rdata: object) -> str:
    """Rdata as text without the trailing dot on names (``10 mx.example``, ``ns1.example``)."""
    if rdtype == dns.rdatatype.MX:
        pref = rdata.preference  # type: ignore[attr-defined]
        exchange = rdata.exchange  # type: ignore[attr-defined]
        host = "." if exchange == dns.name.root else exchange.to_text(omit_final_dot=True).lower()
        return f"{pref} {host}"
    if rdtype == dns.rdatatype.NS:
        return str(rdata.target.to_text(omit_final_dot=True).lower())  # type: ignore[attr-defined]
    return str(rdata)


def _server_failure(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    for _server, _tcp, _port, err, *_ in errors:
        if isinstance(err, str) and err:
            return err
    return "no server could answer (SERVFAIL or REFUSED)"
