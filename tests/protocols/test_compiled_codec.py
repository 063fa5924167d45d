"""The compiled policy codec (mypyc, setup.py) behaves exactly like its Python source.

``typoguard.protocols.postfix_policy`` is compiled at install where a C compiler is available; the policy
service then parses requests through the extension. These tests load the same source as plain Python and
feed both the same bytes - whole requests, requests split anywhere, broken and hostile input - comparing
every event, attribute and error. Under CI=true the compiled module must be there (the benchmark figures
in docs/postfix.md depend on it); elsewhere its absence is a skip with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import typoguard.protocols.postfix_policy as compiled
from typoguard.errors import ProtocolError

SOURCE = Path(__file__).resolve().parents[2] / "src" / "typoguard" / "protocols" / "postfix_policy.py"
IS_COMPILED = not compiled.__file__.endswith(".py")

if not IS_COMPILED:
    why = f"the policy codec is not compiled ({compiled.__file__}): pure Python only"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; under CI=true it must be (scripts/install-system-deps.sh, setup.py)")
    pytest.skip(why, allow_module_level=True)


def _pure() -> ModuleType:
    spec = importlib.util.spec_from_file_location("typoguard_codec_as_python", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


pure = _pure()


def test_the_compiled_module_is_built_from_the_current_source() -> None:
    # An editable install keeps the extension beside the source: an edit without a reinstall would leave
    # the service running the old code. `make install` rebuilds when the source changes.
    assert Path(compiled.__file__).stat().st_mtime >= SOURCE.stat().st_mtime, "stale: run `make install`"
    assert pure.__file__ == str(SOURCE)


def _outcome(module: ModuleType, data: bytes, cuts: list[int], fast: bool) -> list[Any]:
    """Everything a server would see: events with their attributes and fields, or the error text."""
    conn = module.PolicyServerConnection(max_line=256, max_attributes=12)
    seen: list[Any] = []
    last = 0
    try:
        for cut in [*sorted(set(cuts)), len(data)]:
            if cut <= last:
                continue
            chunk = data[last:cut]
            last = cut
            if fast and (event := conn.receive_one(chunk)) is not None:
                seen.append(("fast", dict(event.attributes), event.rcpt_fields(), event.get("sender")))
                seen.append(conn.send(module.PolicyReply("DUNNO")))
                continue
            conn.receive_data(chunk)
            while True:
                event = conn.next_event()
                if event is module.NEED_DATA:
                    break
                if isinstance(event, module.ConnectionClosed):
                    seen.append("closed")
                    break
                seen.append(("event", dict(event.attributes), event.rcpt_fields(), event.get("sender")))
                seen.append(conn.send(module.PolicyReply("DUNNO")))
        conn.receive_data(b"")
        seen.append(type(conn.next_event()).__name__)
    except ProtocolError as exc:
        seen.append(("error", str(exc)))
    return seen


_names = st.sampled_from(["protocol_state", "recipient", "sender", "client_address", "queue_id", "x_y"])
_values = st.one_of(
    st.sampled_from(["RCPT", "bob@army.ml", "", "=", "alice@army.mil", "x" * 300]),
    st.text(max_size=20).filter(lambda v: "\n" not in v),
)
# Mostly what smtpd sends (request= first, name=value lines); sometimes broken: no request=, an empty
# name, a line without "=", CR, a long line, too many attributes, invalid UTF-8.
_valid = st.lists(st.tuples(_names, _values), max_size=10).map(
    lambda pairs: (
        b"request=smtpd_access_policy\n"
        + "".join(f"{n}={v}\n" for n, v in pairs).encode("utf-8", "surrogatepass")
        + b"\n"
    )
)
_broken = st.tuples(_valid, st.sampled_from([b"=x\n", b"novalue\n", b"\r\n", b"a=\xff\xfe\n", b"y" * 300]))
_request = st.one_of(
    _valid,
    _valid,
    _valid,
    _broken.map(lambda vb: vb[0][:-1] + vb[1] + b"\n"),
    st.lists(_values, min_size=12, max_size=14).map(
        lambda vs: "".join(f"a{i}={v}\n" for i, v in enumerate(vs)).encode("utf-8", "surrogatepass") + b"\n"
    ),
    st.binary(max_size=40),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_request, min_size=1, max_size=4),
    st.lists(st.integers(min_value=0, max_value=800), max_size=8),
    st.booleans(),
)
def test_compiled_and_python_codecs_agree_on_any_input(
    parts: list[bytes], cuts: list[int], fast: bool
) -> None:
    data = b"".join(parts)
    if fast:  # one request per chunk, as smtpd sends them: the server's fast path
        cuts = [sum(map(len, parts[: i + 1])) for i in range(len(parts))]
    assert _outcome(compiled, data, cuts, fast) == _outcome(pure, data, cuts, fast)


def test_a_real_postfix_request_reads_the_same() -> None:
    request = (
        b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=10.1.2.3\n"
        b"sender=alice@army.mil\nrecipient=bob@army.ml\nqueue_id=4Xk1Qz0mKfz3\nsasl_username=alice\n\n"
    )
    for module in (compiled, pure):
        conn = module.PolicyServerConnection()
        event = conn.receive_one(request)
        assert event.rcpt_fields() == ("RCPT", "bob@army.ml", "alice@army.mil", "10.1.2.3", "4Xk1Qz0mKfz3")
        assert event.get("sasl_username") == "alice"
        assert conn.send(module.PolicyReply("550 5.1.2 no")) == b"action=550 5.1.2 no\n\n"


@pytest.mark.parametrize("action", ["", "DUNNO\nX: y", "HOLD\r", "caf\udce9"])
def test_replies_are_validated_alike(action: str) -> None:
    results = []
    for module in (compiled, pure):
        try:
            results.append(module.PolicyReply(action).wire)
        except ProtocolError as exc:
            results.append(str(exc))
    assert results[0] == results[1]


def test_the_service_can_tell_which_codec_runs() -> None:
    # Logged at start ("listening": codec) and shown by `make bench`: the throughput figures depend on it.
    assert compiled.implementation() == "compiled"
    assert pure.implementation() == "python"
