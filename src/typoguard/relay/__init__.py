"""``typoguard relay``: an SMTP filtering smart host (aiosmtpd) for Exchange, Microsoft 365 and other MTAs.

* ``server``: the SMTP server, the per-recipient decision, the content check and the quarantine hand-off;
* ``next_hop``: the session with the next hop (MAIL sent ahead, the body forwarded as it comes);
* ``auth``: SMTP AUTH against a users file of scrypt hashes.

May import: ``servers``, ``held`` (the quarantine), ``store``, ``decide``, ``guard``, ``senders``,
``protocols``, ``content``, ``core`` and the bottom modules. Not ``policyd``, ``sink`` or ``web``.
"""
