"""Guard: the one entry point adapters call. Detector + policy built from a ``Config``.

A ``Guard`` is immutable once built; reloading configuration means building a new one and swapping the
reference (the Postfix service does that on SIGHUP), so a check never sees half a configuration.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from typoguard import resources
from typoguard.config import Config
from typoguard.core.detector import Detector
from typoguard.core.index import LookalikeIndex
from typoguard.core.names import Domain, normalise_domain
from typoguard.core.policy import Policy
from typoguard.core.verdict import Assessment, Verdict
from typoguard.errors import ConfigError, InvalidAddress


def _normalise_all(names: Iterable[str], origin: str) -> list[Domain]:
    out = []
    for name in names:
        try:
            out.append(normalise_domain(name.strip()))
        except InvalidAddress as exc:
            raise ConfigError(f"{origin}: {exc}") from None
    return out


def read_protect_file(path: Path) -> list[str]:
    try:
        return resources.read_domain_list(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read protected-domain file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"protected-domain file {path} is not UTF-8") from None


def _normalise_weights(weights: Mapping[str, float], protected: set[str]) -> dict[str, float]:
    """Weights keyed by normalised domain; a weight for a domain that is not protected is an error."""
    out: dict[str, float] = {}
    for name, weight in weights.items():
        (domain,) = _normalise_all([name], "[protect] weights")
        if domain.ascii not in protected:
            raise ConfigError(f"[protect] weights: {name} is not a protected domain (a typo?)")
        out[domain.ascii] = weight
    return out


class Guard:
    """Checks recipients for one configuration."""

    def __init__(self, config: Config, detector: Detector, compile_seconds: float) -> None:
        self.config = config
        self.detector = detector
        self.index = detector.index
        self.compile_seconds = compile_seconds

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        extra_domains: Iterable[str] = (),
        extra_files: Iterable[Path] = (),
    ) -> Guard:
        """Build from configuration plus command-line additions. Raises ``ConfigError``."""
        started = time.perf_counter()
        names: list[str] = list(config.protect.domains) + list(extra_domains)
        for path in [*config.protect_files(), *extra_files]:
            names.extend(read_protect_file(path))
        protected = _normalise_all(names, "protected domains")
        weights = _normalise_weights(config.protect.weights, {d.ascii for d in protected})
        trusted = [d.ascii for d in _normalise_all(config.protect.trusted, "[protect] trusted")]
        ctx = resources.model_context(tuple(config.protect.layouts))
        suffixes = sorted({d.ascii for d in protected if ctx.suffixes.is_known(d.ascii)})
        if suffixes:
            raise ConfigError(
                f"protected domains: {', '.join(suffixes)}: a public suffix, under which anyone registers "
                "names, not a mail domain; protect the domains under it (e.g. hmrc.gov.uk for gov.uk)"
            )
        index = LookalikeIndex.compile(
            protected,
            ctx,
            resources.domain_skeletons(),
            models=config.protect.models,
            weights=weights,
            common_words=resources.common_words() if config.protect.use_word_list else frozenset(),
        )
        legit = resources.legitimate_domains() if config.protect.use_legit_list else frozenset()
        policy = Policy(
            config.policy.thresholds(),
            trusted=trusted,
            legitimate=legit - index.domains,
            registrable=ctx.suffixes.registrable,
        )
        return cls(config, Detector(index, policy), time.perf_counter() - started)

    def check(self, recipient: str) -> Verdict:
        return self.detector.check(recipient)

    def assess(self, recipient: str) -> Assessment:
        """``check(recipient).assessment``, without building the ``Verdict``."""
        return self.detector.assess(recipient)

    def assess_domain(self, domain: str) -> Assessment:
        return self.detector.assess_domain(domain)
