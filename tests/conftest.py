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
