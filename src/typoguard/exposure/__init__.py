"""DNS exposure of look-alike domains and block-list export (issue 6). See docs/exposure.md, docs/export.md.

Pure parts: ``model`` (values), ``classify`` (answers -> status, grouping, run comparison), ``export``
(block-list formatters), ``report_html``. I/O: ``resolve`` (dnspython asyncio), ``history`` (JSON file),
``scan`` (ties them together), ``health`` (is the resolver telling the truth).

May import: ``core`` and the bottom modules (``config``, ``errors``).
"""
