"""PURE detection and every rule that chooses an action: no sockets, files, environment, clocks or databases.

names (Address/Domain values, IDNA, case, trailing dot), suffixes (public suffix), keyboard, confusables,
models/ (one typo model per file), index (the compiled look-alike index), detector (findings: evidence
only), policy (thresholds -> action), context (overrides, correspondents, first contact), verdict
(``Action``, ``Assessment``, ``Verdict``), describe (sentences), memo (caches bounded by bytes).

May import: ``typoguard.errors`` and the pure standard library only (import-linter: ``core-pure``).
"""
