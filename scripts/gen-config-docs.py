"""Write docs/configuration.md from the config schema (src/typoguard/config.py): every section and key with
its type, default and meaning. Run it after changing a key; tests/test_config_docs.py fails while the
document is stale.

    .venv/bin/python scripts/gen-config-docs.py          # rewrite docs/configuration.md
    .venv/bin/python scripts/gen-config-docs.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from typoguard.config_text import render_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def main(argv: list[str]) -> int:
    text = render_markdown()
    if "--check" in argv:
        if DOC.exists() and DOC.read_text("utf-8") == text:
            return 0
        print(f"{DOC} is stale: run .venv/bin/python scripts/gen-config-docs.py", file=sys.stderr)
        return 1
    DOC.write_text(text, "utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
