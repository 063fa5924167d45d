"""Human sentences for findings: what changed between what was typed and what was meant."""

from __future__ import annotations

import unicodedata


def describe_change(typed: str, intended: str, what: str) -> str:
    """A short phrase for the difference between two strings: "the 'i' of .mil dropped"."""
    p = 0
    while p < min(len(typed), len(intended)) and typed[p] == intended[p]:
        p += 1
    q = 0
    while q < min(len(typed), len(intended)) - p and typed[-1 - q] == intended[-1 - q]:
        q += 1
    t_mid, i_mid = typed[p : len(typed) - q], intended[p : len(intended) - q]
    if not t_mid and len(i_mid) == 1:
        return f"the {_ch(i_mid)} of {what} dropped"
    if not i_mid and len(t_mid) == 1:
        before = intended[p - 1] if p > 0 else ""
        if t_mid == before or (len(intended) > p and t_mid == intended[p]):
            return f"the {_ch(t_mid)} of {what} doubled"
        return f"an extra {_ch(t_mid)} in {what}"
    if len(t_mid) == 2 and t_mid == i_mid[::-1]:
        return f"the {_ch(i_mid)} of {what} swapped"
    if t_mid and i_mid:
        return f"the {_ch(i_mid)} of {what} typed as {_ch(t_mid, article=True)}"
    return f"{what} changed"


def _ch(s: str, *, article: bool = False) -> str:
    if s == ".":
        return "a dot" if article else "dot"
    if s == "-":
        return "a hyphen" if article else "hyphen"
    return f"'{s}'"


def glyph_note(typed: str, intended: str) -> str:
    """Why ``typed`` reads as ``intended``: the foreign characters, named, or the ASCII look-alikes."""
    odd = [ch for ch in dict.fromkeys(typed) if not ch.isascii() and ch != "."]
    if not odd:
        return f"characters that read alike ({describe_change(typed, intended, intended)})"
    shown = ", ".join(f"'{ch}' ({unicodedata.name(ch, f'U+{ord(ch):04X}').lower()})" for ch in odd[:3])
    more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
    return f"look-alike characters {shown}{more} in place of {intended}'s own"
