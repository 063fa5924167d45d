"""Resolution and classification against the real local DNS server."""

from __future__ import annotations

import asyncio

import pytest
from dns_server import LocalDnsServer
from lab_zones import ZONES

from typoguard import resources
from typoguard.exposure.classify import assess
from typoguard.exposure.model import DnsAnswers, Status
from typoguard.exposure.resolve import ExposureResolver, ResolverSettings

REGISTRABLE = resources.model_context().suffixes.registrable


PEAK: list[int] = []


def _resolve(server: LocalDnsServer, names: list[str], **kw: float) -> tuple[dict[str, DnsAnswers], int]:
    settings = ResolverSettings(("127.0.0.1",), port=server.port, **kw)  # type: ignore[arg-type]

    async def run() -> tuple[dict[str, DnsAnswers], int]:
        resolver = ExposureResolver(settings, REGISTRABLE)
        answers = await resolver.resolve_many(names)
        PEAK.append(resolver.peak_in_flight)
        return answers, resolver.queries

    return asyncio.run(run())


def _status(answers: DnsAnswers) -> Status:
    return assess("army.mil", answers.name, "k", 1.0, answers=answers, registrable=REGISTRABLE).status


def test_each_kind_of_lookalike_is_classified(dns_lab: LocalDnsServer) -> None:
    names = ["army.ml", "arny.mil", "army.il", "army.mit", "armymil.com", "army.ril", "armyy.mil"]
    answers, _ = _resolve(dns_lab, names, timeout=10, retries=1)  # every name is answered at once
    got = {n: _status(a) for n, a in answers.items()}
    assert got == {
        "army.ml": Status.ACCEPTS_MAIL,
        "arny.mil": Status.ACCEPTS_MAIL,
        "army.il": Status.ACCEPTS_MAIL,
        "army.mit": Status.NULL_MX,
        "armymil.com": Status.NO_MAIL,
        "army.ril": Status.UNKNOWN,
        "armyy.mil": Status.UNREGISTERED,
    }
    assert answers["army.ml"].mx == ((10, "mx1.catchall.example"), (20, "mx2.catchall.example"))
    assert answers["army.ml"].ns == ("ns1.parking.example",)
    assert answers["army.il"].addresses == ("192.0.2.7",)
    assert answers["army.ril"].error == "MX: SERVFAIL"


def test_a_name_never_answered_is_unknown_after_its_attempts() -> None:
    # Only the silent name here: a short timeout would also fail answered names on a busy machine.
    with LocalDnsServer(ZONES, silent=["army.ril"]) as server:
        answers, queries = _resolve(server, ["army.ril"], timeout=0.3, retries=1)
    assert _status(answers["army.ril"]) is Status.UNKNOWN
    assert "2 attempts" in answers["army.ril"].error
    assert queries == 2


def test_mail_goes_to_the_mx_hosts_or_the_name_itself(dns_lab: LocalDnsServer) -> None:
    answers, _ = _resolve(dns_lab, ["army.ml", "army.il"], timeout=10)
    ml = assess(
        "army.mil", "army.ml", "suffix_typo", 0.97, answers=answers["army.ml"], registrable=REGISTRABLE
    )
    il = assess(
        "army.mil", "army.il", "suffix_typo", 0.97, answers=answers["army.il"], registrable=REGISTRABLE
    )
    assert ml.mail_hosts == ("mx1.catchall.example", "mx2.catchall.example")
    assert ml.provider == "catchall.example"
    assert il.mail_hosts == ("army.il",)
    assert il.provider == "A 192.0.2.7"


def test_unregistered_costs_one_query_and_a_dead_parent_answers_for_its_children(
    dns_lab: LocalDnsServer,
) -> None:
    _, queries = _resolve(dns_lab, ["armyy.mil"], timeout=10)
    assert queries == 1
    # ar.my.mil and a.rmy.mil sit below my.mil/rmy.mil: one NS question each settles them.
    answers, queries = _resolve(dns_lab, ["ar.my.mil", "x.ar.my.mil", "a.rmy.mil"], timeout=10)
    assert all(a.nxdomain for a in answers.values())
    assert queries == 2


def test_a_server_that_never_answers_gives_unknown_after_the_retries(dead_dns: LocalDnsServer) -> None:
    before = dead_dns.answers.queries
    answers, queries = _resolve(dead_dns, ["army.ml"], timeout=0.2, retries=2)
    assert _status(answers["army.ml"]) is Status.UNKNOWN
    assert queries == 3
    assert dead_dns.answers.queries - before == 3


def test_concurrency_is_bounded(dns_lab: LocalDnsServer) -> None:
    names = [f"n{i}.example" for i in range(300)]
    answers, queries = _resolve(dns_lab, names, timeout=10, concurrency=7)
    assert len(answers) == 300
    assert queries == 300
    assert PEAK[-1] == 7
    assert all(a.nxdomain for a in answers.values())


def test_an_answer_too_big_for_udp_is_fetched_over_tcp() -> None:
    hosts = [f"{10 + i} mail-exchanger-number-{i}.bigprovider.example." for i in range(30)]
    with LocalDnsServer({"big.ml": {"MX": hosts}}) as server:
        answers, _ = _resolve(server, ["big.ml"], timeout=10)
    assert len(answers["big.ml"].mx) == 30
    assert _status(answers["big.ml"]) is Status.ACCEPTS_MAIL


@pytest.mark.parametrize(
    ("mx", "status", "hosts"),
    [
        (((10, "localhost"),), Status.NO_MAIL, ()),  # parked names point MX at localhost: nothing receives
        (((10, "LocalHost."),), Status.NO_MAIL, ()),
        (((10, "127.0.0.1"),), Status.NO_MAIL, ()),  # an address written as an MX name
        (((0, "0.0.0.0"), (10, "localhost.localdomain")), Status.NO_MAIL, ()),
        (((10, "localhost"), (20, "mx.catchall.example")), Status.ACCEPTS_MAIL, ("mx.catchall.example",)),
        (((10, "192.0.2.7"),), Status.ACCEPTS_MAIL, ("192.0.2.7",)),  # some MTAs do deliver there
        (((10, "127.mx.example"),), Status.ACCEPTS_MAIL, ("127.mx.example",)),  # a name, not an address
    ],
)
def test_mx_hosts_that_are_the_senders_own_machine_receive_nothing(
    mx: tuple[tuple[int, str], ...], status: Status, hosts: tuple[str, ...]
) -> None:
    # "MX 10 localhost." is how many parked and defensive registrations refuse mail: a sender's MTA would
    # deliver to itself and bounce. Such a look-alike is registered and takes no mail, not "accepts mail
    # at localhost" (and a watch must not raise a critical alert for it).
    r = assess(
        "army.mil", "amry.mil", "k", 1.0, answers=DnsAnswers("amry.mil", mx=mx), registrable=REGISTRABLE
    )
    assert (r.status, r.mail_hosts) == (status, hosts)
