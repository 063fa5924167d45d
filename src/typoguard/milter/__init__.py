"""``typoguard milter``: the recipient decision inside Sendmail, Postfix (``smtpd_milters`` and
``non_smtpd_milters``) and any other milter MTA (docs/milter.md, ADR 0025).

May import: ``servers`` and everything below it (``protocols.milter`` for the wire).
"""
