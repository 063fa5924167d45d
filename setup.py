"""Build hook: compiles the Postfix policy codec with mypyc (the policy service's per-request parsing).

Everything else is in pyproject.toml. The codec (``src/typoguard/protocols/postfix_policy.py``) is plain,
fully typed Python; mypyc turns it into a C extension that parses a request in about two thirds of the
time (docs/adr/0011-compiled-codec.md). Where it cannot be built (no C compiler or Python headers) the
extension is skipped and the same module runs as Python. ``TYPOGUARD_PURE_PYTHON=1`` skips it on purpose.
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = ["src/typoguard/protocols/postfix_policy.py"]

ext_modules = []
if os.environ.get("TYPOGUARD_PURE_PYTHON", "") not in ("1", "true", "yes"):
    try:
        from mypyc.build import mypycify
    except ImportError:  # built without mypy in the build environment: pure Python
        pass
    else:
        # Only the codec is analysed: its imports from the rest of typoguard are not followed (they are
        # checked by `mypy --strict src` in the tests), so the build needs no runtime dependency.
        ext_modules = mypycify(["--follow-imports=skip", *COMPILED], opt_level="3")
        for ext in ext_modules:
            ext.optional = True  # a failed compile leaves the pure-Python module, not a failed install

setup(ext_modules=ext_modules)
