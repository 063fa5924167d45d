"""``typoguard audit``: find mail that already went to look-alike domains, from logs and mailboxes.

sources     which format an input is in; opening (gzip/bzip2/xz); cutting into tasks
postfix_lines   the one reader of Postfix log lines (formats, times, fields), for audit and learn
postfix, exim, sendmail, m365, exchange, mailbox     one reader per format -> ``Partial`` records
            (line_scanner: what the Postfix, Exim and Sendmail scanners share; tabular: the CSV exports)
runner      tasks over worker processes; partials joined into ``AuditEvent``s
aggregate   totals, per domain / sender / week, repeat patterns
report_text, report_data, report_html      terminal tables; JSON/CSV; one offline HTML page
learn       ``typoguard learn``: correspondents from the mail Postfix logs show delivered

May import: ``store`` (``learn`` writes correspondents), ``core`` and the bottom modules.
"""

from __future__ import annotations

from typoguard.audit.aggregate import Summary, summarise
from typoguard.audit.model import AuditEvent, Outcome, SourceStats
from typoguard.audit.runner import AuditResult, audit
from typoguard.audit.sources import Format

__all__ = ["AuditEvent", "AuditResult", "Format", "Outcome", "SourceStats", "Summary", "audit", "summarise"]
