"""``python -m typoguard.adapters.policy_query``: the old path of ``python -m typoguard.policyd.query``."""

from __future__ import annotations

import sys

from typoguard.policyd.query import main

if __name__ == "__main__":
    sys.exit(main())
