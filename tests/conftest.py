"""Shared fixtures: one Guard protecting the domains of the issue's golden cases, built once per session.

Tests import nothing from here; they ask for fixtures by name. The Guard is built from a ``Config`` value
(not ``load_config``), so no ``TYPOGUARD_*`` variable in the environment can change what the tests see.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from typoguard import resources
from typoguard.config import Config, ProtectConfig
from typoguard.core.confusables import DomainSkeletons
from typoguard.core.index import LookalikeIndex
from typoguard.core.models import ModelContext
from typoguard.guard import Guard

# Moderate example counts keep the whole suite well under a minute; CI can raise them with
# --hypothesis-profile=thorough.
settings.register_profile(
    "typoguard", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("typoguard")

PROTECTED: tuple[str, ...] = (
    "army.mil",
    "navy.mil",
    "us.af.mil",
    "state.gov",
    "ca.ibm.com",
    "gmail.com",
    "outlook.com",
    "comcast.net",
    "verizon.net",
)


@pytest.fixture(scope="session")
def protected() -> tuple[str, ...]:
    """The protected domains of the shared ``guard``."""
    return PROTECTED


@pytest.fixture(scope="session")
def guard() -> Guard:
    """A Guard protecting ``PROTECTED``: every model, default thresholds, the shipped legit list."""
    return Guard.from_config(Config(protect=ProtectConfig(domains=PROTECTED)))


@pytest.fixture(scope="session")
def index(guard: Guard) -> LookalikeIndex:
    return guard.index


@pytest.fixture(scope="session")
def ctx() -> ModelContext:
    """The model context built from the shipped data (PSL, qwerty+qwertz+azerty, confusables)."""
    return resources.model_context()


@pytest.fixture(scope="session")
def skeletons() -> DomainSkeletons:
    return resources.domain_skeletons()


@pytest.fixture(scope="session")
def typoguard_exe() -> str:
    """The installed console script, as other tools run it."""
    candidate = Path(sys.executable).with_name("typoguard")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("typoguard")
    if found is None:  # pragma: no cover - the package is installed for the tests
        pytest.fail("the typoguard console script is not installed next to the test interpreter")
    return found


# ------------------------------------------------------------------------- the .deb, built in the background
# `make deb` takes 80-90 s of mostly one core (pip, mypyc, dpkg-deb) while the suite as a whole keeps a 2-core
# machine under one core busy. When the .deb tests are selected and can run, the build starts as soon as the
# tests are collected, at the lowest CPU and I/O priority (nice 19, idle I/O class), and
# tests/packaging/test_deb.py's `deb` fixture waits for it: its time overlaps the rest of the suite instead of
# adding to it. TYPOGUARD_TEST_DEB (a .deb already built) skips it, as before.
DEB_BUILD = pytest.StashKey["DebBuild"]()


class DebBuild:
    """A background ``make deb``: its process, its log, when it started."""

    def __init__(self, repo: Path) -> None:
        import subprocess
        import time

        self.log = repo / "build" / "make-deb.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["nice", "-n", "19", "ionice", "-c", "3", "make", "-C", str(repo), "deb"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def wait(self, timeout: float) -> tuple[int, float, str]:
        """(exit status, seconds since the start, the log's last 6000 characters)."""
        import time

        status = self.proc.wait(timeout)
        return status, time.monotonic() - self.started, self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        import os
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)


def _deb_build_can_run() -> bool:
    import os

    needs = ("dh_virtualenv", "dpkg-buildpackage", "nice", "ionice")
    return os.geteuid() == 0 and not os.environ.get("TYPOGUARD_TEST_DEB") and all(map(shutil.which, needs))


def pytest_collection_finish(session: pytest.Session) -> None:
    wanted = any(item.nodeid.startswith("tests/packaging/test_deb.py") for item in session.items)
    if wanted and _deb_build_can_run():
        session.config.stash[DEB_BUILD] = DebBuild(Path(__file__).resolve().parents[1])


def pytest_unconfigure(config: pytest.Config) -> None:
    build = config.stash.get(DEB_BUILD, None)
    if build is not None:
        build.stop()  # an interrupted run leaves no build behind


@pytest.fixture(scope="session")
def deb_background_build(request: pytest.FixtureRequest) -> DebBuild | None:
    """The background ``make deb`` started at collection, or None when none was started."""
    return request.config.stash.get(DEB_BUILD, None)
