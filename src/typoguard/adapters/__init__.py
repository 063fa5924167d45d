"""Old module paths kept because they are documented commands (issue 16 moved the code, not the contracts).

Only ``python -m typoguard.adapters.policy_query`` is here; the code lives in ``typoguard.policyd.query``.
Nothing in typoguard imports this package.
"""
