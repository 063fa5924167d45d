"""Plumbing the server roles share: the event loop (uvloop), the aiosmtpd base both SMTP servers use
(admission, one checked reply writer), and systemd readiness (``sd_notify``).

May import: ``obs``, ``errors`` (and the standard library). Nothing here knows what a decision is.
"""
