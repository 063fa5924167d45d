"""``typoguard http`` and the API inside ``typoguard serve``: the JSON API (Starlette, ASGI), the
``POST /v1/check`` fast path, the published OpenAPI document and the server-rendered dashboard.

May import: ``held``, ``store``, ``guard``, ``core`` and the bottom modules. Not ``policyd``, ``relay``,
``sink``.
"""
