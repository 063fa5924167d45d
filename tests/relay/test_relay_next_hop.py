"""The relay's next-hop client against a scripted next hop on loopback: how replies are read (split,
multi-line, malformed, late, 421), what is said (EHLO, HELO when EHLO is refused, QUIT at the end), and
that a command with control characters never reaches the next hop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from typoguard.config import Config, RelayConfig
from typoguard.errors import ConfigError
from typoguard.relay.next_hop import SYNTAX, NextHop, NextHopDown, NextHopSettings

Script = Callable[[bytes], list[bytes]]  # a command line (without CRLF) -> the chunks to answer with


class ScriptedHop:
    """A TCP server answering each command line as ``script`` says; it keeps every line it was sent."""

    def __init__(self, script: Script, greeting: bytes = b"220 hop.test ESMTP\r\n") -> None:
        self.script = script
        self.greeting = greeting
        self.lines: list[bytes] = []
        self.events: list[str] = []  # "got MAIL", "sent 250", ... in the order they happened
        self.closed = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.greeting)
        try:
            while line := await reader.readline():
                self.lines.append(line.rstrip(b"\r\n"))
                self.events.append(f"got {line.split()[0].decode()}")
                for chunk in self.script(line.rstrip(b"\r\n")):
                    if not chunk:  # a pause before the next chunk
                        await asyncio.sleep(0.2)
                        continue
                    writer.write(chunk)
                    self.events.append(f"sent {chunk[:3].decode()}")
                    await writer.drain()
                    await asyncio.sleep(0.01)  # each chunk its own segment
        finally:
            writer.close()
            self.closed.set()

    async def __aenter__(self) -> tuple[ScriptedHop, NextHop]:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        settings = NextHopSettings("127.0.0.1", port, 1.0, "opportunistic", None, helo_name="relay.test")
        return self, NextHop(settings)

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


def usual(line: bytes) -> list[bytes]:
    verb = line.split(b" ", 1)[0].upper()
    if verb == b"EHLO":
        return [b"250-hop.test\r\n250-PIPE", b"LINING\r\n250 SIZE 1000\r\n"]  # split inside a line
    if verb == b"RCPT" and b"nosuch" in line:
        return [b"550-5.1.1 No such user\r\n", b"550 5.1.1 (really)\r\n"]
    if verb == b"QUIT":
        return [b"221 bye\r\n"]
    return [b"250 2.0.0 Ok\r\n"]


async def mail_ahead(client: NextHop) -> None:
    """The session opened and MAIL FROM:<alice@army.mil> sent (its reply not read yet)."""
    await client.open()
    client.mail_soon("alice@army.mil", [])


async def mail_sent(client: NextHop) -> None:
    """The session opened and MAIL FROM:<alice@army.mil> answered."""
    await mail_ahead(client)
    await client.mail_result()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_replies_split_anywhere_and_multi_line_come_back_as_their_first_line() -> None:
    async def go() -> None:
        async with ScriptedHop(usual) as (hop, client):
            await mail_ahead(client)
            assert await client.mail_result() == "250 2.0.0 Ok"
            assert await client.rcpt("nosuch@navy.mil", []) == "550 5.1.1 No such user"
            assert await client.rcpt("bob@navy.mil", ["NOTIFY=NEVER"]) == "250 2.0.0 Ok"
            await client.abandon()  # RSET
            client.close()
            await asyncio.wait_for(hop.closed.wait(), 5)
            said = [b"EHLO relay.test", b"MAIL FROM:<alice@army.mil>", b"RCPT TO:<nosuch@navy.mil>",
                    b"RCPT TO:<bob@navy.mil> NOTIFY=NEVER", b"RSET", b"QUIT"]  # fmt: skip
            assert hop.lines == said

    run(go())


def test_helo_when_ehlo_is_refused() -> None:
    def old(line: bytes) -> list[bytes]:
        return [b"502 5.5.1 EHLO not implemented\r\n"] if line.startswith(b"EHLO") else usual(line)

    async def go() -> None:
        async with ScriptedHop(old) as (hop, client):
            await client.open()
            assert hop.lines == [b"EHLO relay.test", b"HELO relay.test"]
            client.close()

    run(go())


def test_required_tls_that_is_not_offered_is_next_hop_down() -> None:
    async def go() -> None:
        async with ScriptedHop(usual) as (_, client):
            strict = NextHop(replace(client.settings, tls="required"))
            with pytest.raises(NextHopDown, match="STARTTLS"):
                await strict.open()

    run(go())


def test_settings_come_from_the_relay_config(tmp_path: Path) -> None:
    relay = RelayConfig(next_hop="[::1]:2526", next_hop_timeout=7.5, next_hop_tls="required")
    settings = NextHopSettings.from_config(Config(relay=relay, base_dir=str(tmp_path)), helo_name="mx.test")
    assert (settings.host, settings.port, settings.timeout, settings.tls) == ("::1", 2526, 7.5, "required")
    assert settings.tls_context is not None and settings.tls_context.check_hostname  # required: verified
    assert settings.helo_name == "mx.test"
    plain = Config(relay=replace(relay, next_hop_tls="none"), base_dir=str(tmp_path))
    assert NextHopSettings.from_config(plain, helo_name="mx.test").tls_context is None
    bad = Config(relay=replace(relay, next_hop="mx.test:99999"), base_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"\[relay\] next_hop"):
        NextHopSettings.from_config(bad, helo_name="mx.test")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ([b"hello there\r\n"], "malformed"),
        ([b"250 Ok"], "timed out"),  # no line end: the reply never completes
        ([], "timed out"),
        ([b"421 4.3.2 Shutting down\r\n"], "421"),
        ([b"250-" + b"x" * 70_000], "too long"),
    ],
)
def test_a_broken_next_hop_is_next_hop_down_never_a_hang(answer: list[bytes], error: str) -> None:
    def broken(line: bytes) -> list[bytes]:
        return answer if line.startswith(b"RCPT") else usual(line)

    async def go() -> None:
        async with ScriptedHop(broken) as (_, client):
            await mail_sent(client)
            with pytest.raises(NextHopDown, match=error):
                await asyncio.wait_for(client.rcpt("bob@navy.mil", []), 5)
            with pytest.raises(NextHopDown):  # and the session is over
                await client.rcpt("carol@navy.mil", [])

    run(go())


def test_control_characters_are_refused_not_sent() -> None:
    async def go() -> None:
        async with ScriptedHop(usual) as (hop, client):
            await mail_sent(client)
            assert await client.rcpt("bob@navy.mil\r\nDATA", []) == SYNTAX
            assert await client.rcpt("bob@navy.mil", ["X=\x00"]) == SYNTAX
            assert all(b"DATA" not in line and b"\x00" not in line for line in hop.lines)
            assert await client.rcpt("bob@navy.mil", []) == "250 2.0.0 Ok"  # the session goes on

    run(go())


def test_a_session_dropped_in_the_middle_of_a_transaction_says_no_quit() -> None:
    async def go() -> None:
        async with ScriptedHop(usual) as (hop, client):
            await mail_sent(client)
            client.close()  # in a transaction: the connection is dropped, the next hop discards it
            await asyncio.wait_for(hop.closed.wait(), 5)
            assert hop.lines[-1] == b"MAIL FROM:<alice@army.mil>"

    run(go())


def test_with_pipelining_rcpt_goes_out_before_the_reply_to_mail() -> None:
    """A next hop offering PIPELINING gets RCPT without waiting for MAIL's reply (one round trip less per
    message on a distant next hop); this one answers MAIL only once RCPT is there."""

    def pipelining(line: bytes) -> list[bytes]:
        if line.startswith(b"EHLO"):
            return [b"250-hop.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"]
        if line.startswith(b"MAIL"):
            return []
        if line.startswith(b"RCPT"):
            return [b"250 2.1.0 sender ok\r\n250 2.1.5 recipient ok\r\n"]
        return usual(line)

    async def go() -> None:
        async with ScriptedHop(pipelining) as (hop, client):
            await mail_ahead(client)
            assert await client.rcpt("bob@navy.mil", []) == "250 2.1.5 recipient ok"
            assert client.in_transaction
            assert hop.events[-3:] == ["got MAIL", "got RCPT", "sent 250"]

    run(go())


def test_without_pipelining_rcpt_waits_for_the_reply_to_mail() -> None:
    def slow_mail(line: bytes) -> list[bytes]:
        return [b"", b"250 2.1.0 sender ok\r\n"] if line.startswith(b"MAIL") else usual(line)

    async def go() -> None:
        async with ScriptedHop(slow_mail) as (hop, client):
            await mail_ahead(client)
            assert await client.rcpt("bob@navy.mil", []) == "250 2.0.0 Ok"
            assert hop.events[-4:] == ["got MAIL", "sent 250", "got RCPT", "sent 250"]

    run(go())


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_sender_is_every_recipients_answer(pipelining: bool) -> None:
    def refuse(line: bytes) -> list[bytes]:
        if line.startswith(b"EHLO"):
            return [b"250-hop.test\r\n250 PIPELINING\r\n" if pipelining else b"250 hop.test\r\n"]
        if line.startswith(b"MAIL"):
            return [b"550 5.7.1 Sender rejected\r\n"]
        if line.startswith(b"RCPT"):
            return [b"503 5.5.1 Need MAIL first\r\n"]
        return usual(line)

    async def go() -> None:
        async with ScriptedHop(refuse) as (hop, client):
            await mail_ahead(client)
            assert await client.rcpt("bob@navy.mil", []) == "550 5.7.1 Sender rejected"
            assert await client.rcpt("carol@navy.mil", []) == "550 5.7.1 Sender rejected"
            assert not client.in_transaction
            assert (b"RCPT TO:<bob@navy.mil>" in hop.lines) is pipelining  # sent ahead only when pipelining

    run(go())


def test_a_large_message_gives_the_next_hop_time_beyond_the_command_timeout() -> None:
    """The reply to a message comes once all of it is through: the 1 s timeout grows by 1 s per 64 KiB."""

    def slow_to_take(line: bytes) -> list[bytes]:
        if line == b"DATA":
            return [b"354 go ahead\r\n"]
        if line == b".":
            return [b"", b"", b"", b"", b"", b"", b"", b"250 2.0.0 queued\r\n"]  # after 1.4 s
        return usual(line) if line.split(b" ", 1)[0].isupper() else []

    async def go() -> None:
        async with ScriptedHop(slow_to_take) as (_, client):
            await mail_ahead(client)
            assert await client.rcpt("bob@navy.mil", []) == "250 2.0.0 Ok"
            body = b"x" * 70 + b"\r\n"
            assert await client.finish_data(b"", body * 2000) == "250 2.0.0 queued"  # 144 KB: 3.2 s

    run(go())


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize(
    "answer", [[b"421 4.3.2 Shutting down\r\n"], [b"hello there\r\n"], [b"250-ok\r\n550 mixed codes\r\n"]]
)
def test_after_a_failure_at_mail_every_recipient_is_next_hop_down_never_empty(
    pipelining: bool, answer: list[bytes]
) -> None:
    """Once ``NextHop.rcpt()`` answered the second recipient with ``""`` (a bare CRLF to the client)."""

    def fail_at_mail(line: bytes) -> list[bytes]:
        if line.startswith(b"EHLO"):
            return [b"250-hop.test\r\n250 PIPELINING\r\n" if pipelining else b"250 hop.test\r\n"]
        return answer if line.startswith(b"MAIL") else usual(line)

    async def go() -> None:
        async with ScriptedHop(fail_at_mail) as (_, client):
            await mail_ahead(client)
            for rcpt in ("bob@navy.mil", "carol@navy.mil", "dave@navy.mil"):
                with pytest.raises(NextHopDown):
                    await asyncio.wait_for(client.rcpt(rcpt, []), 5)
            assert client.gone

    run(go())


@pytest.mark.parametrize(("verb", "answer"), [(b"RCPT", b"354 go ahead\r\n"), (b"DATA", b"250 ok\r\n")])
def test_a_reply_out_of_sequence_ends_the_session(verb: bytes, answer: bytes) -> None:
    """A 354 to RCPT (or a 250 to DATA) passed back put Postfix out of step: it bounced the recipient."""

    def odd(line: bytes) -> list[bytes]:
        return [answer] if line.startswith(verb) else usual(line)

    async def go() -> None:
        async with ScriptedHop(odd) as (_, client):
            await mail_sent(client)
            with pytest.raises(NextHopDown, match="out of step"):
                if verb == b"RCPT":
                    await client.rcpt("bob@navy.mil", [])
                else:
                    assert await client.rcpt("bob@navy.mil", []) == "250 2.0.0 Ok"
                    client.data_soon()
                    await client.finish_data(b"", b"hello\r\n")
            assert client.gone

    run(go())
