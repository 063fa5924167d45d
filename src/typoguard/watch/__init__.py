"""``typoguard watch``: rounds that notice look-alikes coming alive in DNS and leak patterns in the decision
log, store them as events (``store.events``) and send alerts (webhook, syslog, e-mail digest). See
docs/watch.md and ADR 0024.

``changes`` (exposure history -> observations) and ``leaks`` (decision-log tallies -> observations) are pure;
``round`` runs one round (DNS sanity, scan, leaks, events, alerts); ``alerts`` and its senders deliver;
``companion`` runs rounds on a schedule inside ``typoguard serve``.

May import: ``exposure``, ``held``, ``store``, ``guard``, ``core`` and the bottom modules. Imported by
``policyd`` (serve) and ``cli`` only.
"""
