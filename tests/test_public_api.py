"""The public surface of ``typoguard``: what ``__init__`` exports is a promise; this pins it."""

from __future__ import annotations

import typoguard
from typoguard import errors


def test_all_is_pinned() -> None:
    # Adding a name is a deliberate API change: update this list in the same commit.
    assert sorted(typoguard.__all__) == [
        "Action",
        "Assessment",
        "Config",
        "ConfigError",
        "Finding",
        "Guard",
        "InvalidAddress",
        "LookalikeIndex",
        "ProtocolError",
        "TypoguardError",
        "UnknownModel",
        "Verdict",
        "__version__",
        "load_config",
    ]


def test_every_exported_name_exists() -> None:
    for name in typoguard.__all__:
        assert getattr(typoguard, name) is not None, name


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from typoguard import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(typoguard.__all__)


def test_version_matches_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert typoguard.__version__ == version("typoguard")


def test_one_exception_tree() -> None:
    assert issubclass(typoguard.InvalidAddress, typoguard.TypoguardError)
    assert issubclass(typoguard.InvalidAddress, ValueError)
    assert issubclass(typoguard.ConfigError, typoguard.TypoguardError)
    assert issubclass(typoguard.UnknownModel, typoguard.ConfigError)
    assert issubclass(typoguard.ProtocolError, typoguard.TypoguardError)
    public_errors = {
        obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, BaseException)
    }
    assert all(issubclass(e, typoguard.TypoguardError) for e in public_errors)


def test_action_values_are_the_json_contract() -> None:
    assert [a.value for a in typoguard.Action] == ["allow", "warn", "hold", "reject", "invalid"]
