"""Who refused a mail to a look-alike: typoguard, or something else? Told from the refusal's text.

typoguard refuses in several places and words, and the words change: the policy service's default
template (``<r>: army.ml looks like army.mil (...); did you mean bob@army.mil?``, later
``Not sent: army.ml is not army.mil. Did you mean bob@army.mil? Nothing was delivered.``), a site's own
``reject_template``, the sink (``army-mil.com is not army.mil; you probably meant <bob@army.mil>``), the
relay (``not sent: ...``) and the tables ``typoguard export`` writes (``REJECT 5.1.2 did you mean
army.mil?``). Postfix logs them at RCPT time (``NOQUEUE: reject: RCPT from ...: 550 5.1.2 <r>: Recipient
address rejected: <text>``), or, when typoguard runs on a later hop, in a bounce
(``status=bounced (host ... said: 550 5.1.2 ...)``). A refusal is typoguard's when:

1. its text carries one of typoguard's marks (``MARKS``: every default wording, old and new, has one); or
2. it names the protected domain the recipient imitates (``army.mil`` for ``bob@army.ml``): a refusal
   that is about the look-alike *and* the domain it imitates is a look-alike check's; or
3. it carries the enhanced status code ``5.1.2`` that typoguard's policy replies keep with any template,
   and does not read like a DNS or mailbox failure (Postfix's own ``5.1.2 ... Domain not found``).

Rules 2 and 3 do not apply to texts that say the mailbox or domain does not exist (``NOT_OURS``).
Only recipients at look-alike domains are ever asked about, which is what makes rules 2 and 3 safe.
"""

from __future__ import annotations

import re

from typoguard.audit.model import Hit

#: Lower-case fragments of typoguard's own refusal texts.
MARKS: tuple[bytes, ...] = (
    b"typoguard",
    b" looks like ",
    b"not sent:",
    b"nothing was delivered",
    b"did you mean",
    b"you probably meant",
)
_CODE_5_1_2 = re.compile(rb"(?<![\w.])5\.1\.2(?![\w.])")
NOT_OURS = re.compile(
    rb"(?i)not found|unknown|no such|does not exist|doesn't exist|does not accept|malformed"
    rb"|name service|unrout|bad destination|mailbox unavailable|over quota|temporar"
)
_NAMED: dict[str, re.Pattern[bytes]] = {}


def _naming(domain: str) -> re.Pattern[bytes]:
    """Finds ``domain`` as a whole name (``army.mil``, not the ``army.mil`` inside ``army.mil.com``)."""
    pattern = _NAMED.get(domain)
    if pattern is None:
        if len(_NAMED) > 4096:
            _NAMED.clear()
        escaped = re.escape(domain.encode("utf-8", "surrogateescape"))
        pattern = _NAMED[domain] = re.compile(rb"(?i)(?<![\w.-])" + escaped + rb"(?![\w-]|\.[\w-])")
    return pattern


def by_typoguard(text: bytes, hit: Hit) -> bool:
    """Whether a refusal (or bounce) text of mail to ``hit``'s look-alike is typoguard's (see above)."""
    low = text.lower()
    if any(mark in low for mark in MARKS):
        return True
    if NOT_OURS.search(text) is not None:
        return False
    return _naming(hit.intended).search(text) is not None or _CODE_5_1_2.search(text) is not None
