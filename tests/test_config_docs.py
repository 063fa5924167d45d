"""docs/configuration.md is generated from the config schema in src/typoguard/config.py; never stale."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from typoguard.config import SECTIONS
from typoguard.config_text import REGENERATE, render_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_configuration_md_is_up_to_date() -> None:
    assert DOC.exists(), f"docs/configuration.md is missing: run {REGENERATE}"
    assert DOC.read_text("utf-8") == render_markdown(), f"docs/configuration.md is stale: run {REGENERATE}"


def test_every_key_has_a_one_line_help_and_is_documented() -> None:
    text = render_markdown()
    for section, cls in SECTIONS.items():
        assert f"\n## [{section}]\n" in text
        assert cls.__doc__, f"[{section}] needs a docstring: it opens its part of the document"
        for f in fields(cls):
            help_text = f.metadata.get("help", "")
            assert help_text and "\n" not in help_text, f"[{section}] {f.name} needs a one-line help"
            assert f"| `{f.name}` |" in text


def test_the_example_config_points_to_the_document() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "typoguard.toml"
    assert "docs/configuration.md" in example.read_text("utf-8")
