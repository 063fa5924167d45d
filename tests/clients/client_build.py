"""Running ``scripts/build-clients.sh`` (what ``make clients`` runs) from the client tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_clients(
    typoguard_exe: str, config: Path, out: Path, clients: str = "thunderbird webmail"
) -> subprocess.CompletedProcess[bytes]:
    """``scripts/build-clients.sh`` (what ``make clients`` runs) with CONFIG, OUT and CLIENTS set."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")},
        "CONFIG": str(config),
        "OUT": str(out),
        "CLIENTS": clients,
        "TYPOGUARD": typoguard_exe,
        "PY": sys.executable,
    }
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-clients.sh")],
        env=env,
        capture_output=True,
        timeout=180,
        check=False,
    )
