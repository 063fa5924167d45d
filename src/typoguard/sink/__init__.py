"""``typoguard sink``: the MX for look-alike domains. Refuses every recipient, counts, keeps nothing else.

* ``answer``: recipient -> the RCPT reply (``550 5.1.2 ... you probably meant bob@army.mil``);
* ``limits``: per-client-network connection and rate limits;
* ``counts``: the in-memory tally and its tables (counts per look-alike, intended, sending domain, day);
* ``report``: ``typoguard sink report`` (text, JSON, HTML) and the surge rule.

The SMTP server itself is ``typoguard.sink.server``.

May import: ``servers``, ``store``, ``guard``, ``core`` and the bottom modules. Not ``policyd``, ``relay``,
``web``.
"""
