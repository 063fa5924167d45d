"""``typoguard serve``: the Postfix policy service (``check_policy_service``), the main job.

* ``server``: the asyncio server (``PolicyServer``), connections, limits, metrics;
* ``decider``: a policy request -> the Postfix answer (``DUNNO``, ``550 ...``, ``HOLD``, ``PREPEND``);
* ``serve``: ``typoguard serve``, the policy service with its store and the HTTP API (child or embedded);
* ``query``: ask a running policy service as smtpd would (``python -m typoguard.policyd.query``).

May import: ``web`` (``serve`` starts the API), ``servers``, ``store``, ``decide``, ``guard``, ``senders``,
``protocols``, ``core`` and the bottom modules (``config``, ``obs``, ``errors``).
"""
