"""``[relay]`` validation: every mistake is a ConfigError naming the key."""

from __future__ import annotations

import pytest

from typoguard.config import load_config
from typoguard.errors import ConfigError


def test_defaults_are_valid() -> None:
    relay = load_config(None, environ={}).relay
    assert relay.next_hop_tls == "opportunistic" and relay.on_error == "tempfail"
    assert relay.max_message_size == 36_700_160 and "ssn" in relay.content_high
    assert relay.content_scan == "when-relevant"
    for value, expected in (("true", True), ("false", False), ('"always"', "always")):
        assert (
            load_config(None, environ={"TYPOGUARD_RELAY__CONTENT_SCAN": value}).relay.content_scan == expected
        )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"TYPOGUARD_RELAY__LISTEN": "nowhere"}, "[relay] listen"),
        ({"TYPOGUARD_RELAY__NEXT_HOP": "mx:port"}, "[relay] next_hop"),
        ({"TYPOGUARD_RELAY__TLS_CERT": '"c.pem"'}, "tls_cert and tls_key"),
        ({"TYPOGUARD_RELAY__REQUIRE_TLS": "true"}, "need tls_cert"),
        ({"TYPOGUARD_RELAY__AUTH_USERS_FILE": '"users"'}, "need tls_cert"),
        ({"TYPOGUARD_RELAY__ALLOWED_NETWORKS": '["10.0.0.0/33"]'}, "allowed_networks"),
        ({"TYPOGUARD_RELAY__NEXT_HOP_TLS": '"maybe"'}, "next_hop_tls"),
        ({"TYPOGUARD_RELAY__ON_ERROR": '"dunno"'}, "on_error"),
        ({"TYPOGUARD_RELAY__CONTENT_FLAGGED_ACTION": '"bounce"'}, "content_flagged_action"),
        ({"TYPOGUARD_RELAY__CONTENT_HIGH": '["ssn", "dna"]'}, "unknown dna"),
        ({"TYPOGUARD_RELAY__CONTENT_SCAN": '"sometimes"'}, "content_scan"),
        ({"TYPOGUARD_RELAY__CONTENT_SCAN": "1"}, "content_scan"),
        ({"TYPOGUARD_RELAY__COMMAND_TIMEOUT": "0"}, "command_timeout"),
        ({"TYPOGUARD_RELAY__MAX_MESSAGE_SIZE": "0"}, "max_message_size"),
        ({"TYPOGUARD_RELAY__SURPRISE": "1"}, "unknown key"),
    ],
)
def test_mistakes_are_refused(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        load_config(None, environ=env)
    assert needle in str(err.value)
