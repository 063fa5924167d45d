"""Credentials in mail text, found by detect-secrets' plugins (not hand-made patterns).

* The **token plugins** (AWS keys, GitHub/GitLab/Slack/Stripe/npm/PyPI/OpenAI/SendGrid/Twilio tokens, JSON
  Web Tokens, private-key blocks, basic-auth URLs ...) run over the whole text at once
  (``analyze_string``: one regex pass per plugin, not one call per line).
* The **keyword plugin** finds ``password: Tr0ub4dor&3``-style assignments. It only sees lines that mention
  a credential word, and it is asked with a ``.yaml`` file name: its "config file" rules (``key: value``,
  ``key = value``) are how people write passwords into mail; the source-code rules want quotes.
  A value with spaces ("see below") is prose, not a password.

Left out: the **entropy plugins** (every long word in prose is "high entropy"), the public-IP plugin (not a
credential), and the plugins whose patterns cost tens of milliseconds per megabyte for vendor keys that
seldom travel by mail (Artifactory, Cloudant, IBM Cloud, IBM COS, SoftLayer, Mailchimp).
Counts only: the secret values never leave this module.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Final

from typoguard.content.prepared import Prepared

_SKIPPED_TYPES: Final = frozenset(
    {
        "Base64 High Entropy String",
        "Hex High Entropy String",
        "Public IP (ipv4)",
        "Secret Keyword",  # run separately, on candidate lines only
        "Artifactory Credentials",
        "Cloudant Credentials",
        "IBM Cloud IAM Key",
        "IBM COS HMAC Credentials",
        "SoftLayer Credentials",
        "Mailchimp Access Key",
    }
)
_KEYWORD: Final = re.compile(r"pass(?:word|wd|phrase|code)?|pwd|secret|token|api[_ -]?key")
TOKEN_MIN: Final = 20  # every token the plugins look for is a word at least this long (an AWS key id)
_KEYWORD_ANCHORS: Final = ("pass", "pwd", "secret", "token", "api")
MAX_KEYWORD_LINES: Final = 200  # a message full of "password" costs a bounded time
_PROSE_VALUES: Final = frozenset({"none", "below", "above", "reset", "required", "changed", "expired"})


@cache
def _plugins() -> tuple[tuple[Any, ...], Any]:
    """detect-secrets' plugin instances: (token plugins, keyword plugin). Built once per process."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.keyword import KeywordDetector

    mapping: dict[str, Any] = get_mapping_from_secret_type_to_class()
    classes: list[Any] = [cls for kind, cls in sorted(mapping.items()) if kind not in _SKIPPED_TYPES]
    tokens = tuple(cls() for cls in classes)
    return tokens, KeywordDetector()


def _lines_around(text: str, starts: list[int]) -> list[str]:
    out, last = [], -1
    for pos in starts:
        begin = text.rfind("\n", 0, pos) + 1
        if begin <= last:
            continue  # the same line as the previous hit
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        out.append(text[begin:end])
        last = begin
    return out


def _keyword_starts(p: Prepared) -> list[int]:
    """Where ``_KEYWORD.finditer(p.low)`` finds a match (the first ``MAX_KEYWORD_LINES * 4``), without a
    pass over the text: every match starts with one of ``_KEYWORD_ANCHORS``, and the prepared text knows
    where those are."""
    anchors = sorted(pos for k in _KEYWORD_ANCHORS for pos in p.folded_occurrences(k))
    starts: list[int] = []
    end = 0
    for pos in anchors:
        if pos < end:
            continue  # inside the previous match: finditer goes on after it
        m = _KEYWORD.match(p.low, pos)
        if m is not None:
            starts.append(pos)
            end = m.end()
            if len(starts) == MAX_KEYWORD_LINES * 4:
                break
    return starts


def count_credentials(p: Prepared) -> int:
    """How many credentials the text holds (tokens, keys, password assignments)."""
    tokens, keyword = _plugins()
    text = p.text
    n = 0
    # The token plugins see only the long runs (prose has few): the same findings, a fraction of the text.
    candidates = "\n".join(p.long_words(TOKEN_MIN))
    if p.has("PRIVATE KEY"):
        candidates += "\n-----BEGIN PRIVATE KEY-----" * text.count("PRIVATE KEY-----\n")
    if candidates:
        for plugin in tokens:
            n += sum(1 for _ in plugin.analyze_string(candidates))
    starts = _keyword_starts(p)
    for i, line in enumerate(_lines_around(text, starts)[:MAX_KEYWORD_LINES]):
        if len(line) > 500:
            continue
        for secret in keyword.analyze_line(filename="mail.yaml", line=line, line_number=i + 1):
            value = (secret.secret_value or "").strip()
            if (
                len(value) >= 4
                and not any(ch.isspace() for ch in value)
                and value.lower() not in _PROSE_VALUES
            ):
                n += 1
    return n
