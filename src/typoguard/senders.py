"""Whose mail is guarded: internal senders, by sender domain, SASL login or client network.

typoguard guards *outgoing* mail. A Postfix smtpd that also receives mail from the Internet would
otherwise bounce strangers' mail to look-alikes of our domains, which is not ours to police (and would
tell a spammer which look-alikes we care about). A request is internal when any of these holds:

* the envelope sender's domain matches ``[policy] internal_senders`` (``army.mil`` exactly, ``*.army.mil``
  any subdomain, not army.mil itself);
* the client authenticated with SASL (``sasl_username`` non-empty) and ``[policy] guard_sasl`` is true;
* the client address is in ``[policy] internal_networks`` (CIDR).

The sender address is chosen by the client, so a sender-domain match alone can be forged; that is fine
here: a forged internal sender only gets *more* checking, never less.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from typoguard.config import PolicyConfig
from typoguard.core.names import normalise_domain
from typoguard.errors import ConfigError, InvalidAddress

_CACHE_LIMIT = 4096

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class InternalSenders:
    """Matches a request's sender, SASL login and client address against the configured internal senders."""

    def __init__(
        self,
        domains: Iterable[str] = (),
        subdomains_of: Iterable[str] = (),
        networks: Iterable[IPNetwork] = (),
        *,
        guard_sasl: bool = True,
    ) -> None:
        self.domains = frozenset(domains)
        self.subdomains_of = frozenset(subdomains_of)
        self.networks = tuple(networks)
        self.guard_sasl = guard_sasl
        self._domain_cache: dict[str, bool] = {}
        self._address_cache: dict[str, bool] = {}

    @classmethod
    def from_config(cls, policy: PolicyConfig) -> InternalSenders:
        """Build from ``[policy]``; raises ``ConfigError`` on a bad pattern or network."""
        exact: list[str] = []
        wild: list[str] = []
        for pattern in policy.internal_senders:
            text = pattern.strip()
            target = wild if text.startswith("*.") else exact
            try:
                target.append(normalise_domain(text[2:] if target is wild else text).ascii)
            except InvalidAddress as exc:
                raise ConfigError(f"[policy] internal_senders: {pattern!r}: {exc}") from None
        nets: list[IPNetwork] = []
        for cidr in policy.internal_networks:
            try:
                nets.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(f"[policy] internal_networks: {exc}") from None
        return cls(exact, wild, nets, guard_sasl=policy.guard_sasl)

    @property
    def empty(self) -> bool:
        """True when nothing but (possibly) SASL logins can make a sender internal."""
        return not (self.domains or self.subdomains_of or self.networks)

    def match(self, sender: str, sasl_username: str = "", client_address: str = "") -> str | None:
        """Why the request is internal (``"sasl"``, ``"sender"``, ``"network"``), or None if it is not."""
        if sasl_username and self.guard_sasl:
            return "sasl"
        if sender and self.sender_domain_is_internal(sender):
            return "sender"
        if client_address and self.networks and self.address_is_internal(client_address):
            return "network"
        return None

    def sender_domain_is_internal(self, sender: str) -> bool:
        domain = sender.rpartition("@")[2]
        if not domain:
            return False
        cached = self._domain_cache.get(domain)
        if cached is None:
            cached = self._domain_matches(domain)
            if len(self._domain_cache) >= _CACHE_LIMIT:
                self._domain_cache.clear()
            self._domain_cache[domain] = cached
        return cached

    def _domain_matches(self, text: str) -> bool:
        try:
            name = normalise_domain(text).ascii
        except InvalidAddress:
            return False
        if name in self.domains:
            return True
        rest = name
        while "." in rest:
            rest = rest.split(".", 1)[1]
            if rest in self.subdomains_of:
                return True
        return False

    def address_is_internal(self, client_address: str) -> bool:
        cached = self._address_cache.get(client_address)
        if cached is None:
            try:
                address = ipaddress.ip_address(client_address.partition("%")[0])
            except ValueError:  # "unknown" or garbage: not provably internal
                cached = False
            else:
                if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                    address = address.ipv4_mapped
                cached = any(address in net for net in self.networks)
            if len(self._address_cache) >= _CACHE_LIMIT:
                self._address_cache.clear()
            self._address_cache[client_address] = cached
        return cached
