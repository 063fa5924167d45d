// Human sentences for findings. Mirrors src/typoguard/core/describe.py (the parts a check's reason uses).

import { isAscii, isPunycodeError, punycodeDecode } from './unicode.mjs';

function ch(s, article = false) {
  if (s === '.') return article ? 'a dot' : 'dot';
  if (s === '-') return article ? 'a hyphen' : 'hyphen';
  return `'${s}'`;
}

/** A short phrase for the difference between two strings: "the 'i' of .mil dropped". */
export function describeChange(typedText, intendedText, what) {
  const typed = Array.from(typedText);
  const intended = Array.from(intendedText);
  const lt = typed.length;
  const li = intended.length;
  const shortest = Math.min(lt, li);
  let p = 0;
  while (p < shortest && typed[p] === intended[p]) p++;
  let q = 0;
  while (q < shortest - p && typed[lt - 1 - q] === intended[li - 1 - q]) q++;
  const tMid = typed.slice(p, lt - q);
  const iMid = intended.slice(p, li - q);
  const t = tMid.join('');
  const i = iMid.join('');
  if (!tMid.length && iMid.length === 1) return `the ${ch(i)} of ${what} dropped`;
  if (!iMid.length && tMid.length === 1) {
    const before = p > 0 ? intended[p - 1] : '';
    if (t === before || (li > p && t === intended[p])) return `the ${ch(t)} of ${what} doubled`;
    return `an extra ${ch(t)} in ${what}`;
  }
  if (tMid.length === 2 && t === [...iMid].reverse().join('')) return `the ${ch(i)} of ${what} swapped`;
  if (tMid.length && iMid.length) return `the ${ch(i)} of ${what} typed as ${ch(t, true)}`;
  return `${what} changed`;
}

const SCRIPT_NAMES = {
  LATIN: 'Latin', CYRILLIC: 'Cyrillic', GREEK: 'Greek', ARMENIAN: 'Armenian', HEBREW: 'Hebrew',
  ARABIC: 'Arabic', CHEROKEE: 'Cherokee', GEORGIAN: 'Georgian', COPTIC: 'Coptic',
  MATHEMATICAL: 'mathematical', FULLWIDTH: 'full-width', SMALL: '', ROMAN: '', MODIFIER: '',
};

export class Describer {
  /** @param {import('./unicode.mjs').UnicodeData} u */
  constructor(u) {
    this.u = u;
  }

  charName(c) {
    return this.u.name(c) ?? `u+${c.codePointAt(0).toString(16).padStart(4, '0')}`;
  }

  /** Why ``typed`` reads as ``intended``: the foreign characters, named, or the ASCII look-alikes. */
  glyphNote(typed, intended) {
    const odd = [...new Set(Array.from(typed))].filter((c) => c.charCodeAt(0) >= 128 && c !== '.');
    if (!odd.length) return `characters that read alike (${describeChange(typed, intended, intended)})`;
    const shown = odd.slice(0, 3).map((c) => `'${c}' (${this.charName(c)})`).join(', ');
    const more = odd.length > 3 ? ` and ${odd.length - 3} more` : '';
    return `look-alike characters ${shown}${more} in place of ${intended}'s own`;
  }

  scriptOf(c) {
    const word = this.u.nameWord(c);
    if (Object.hasOwn(SCRIPT_NAMES, word)) return SCRIPT_NAMES[word];
    return /^[A-Za-z]+$/.test(word) && word.length > 2 ? word[0] + word.slice(1).toLowerCase() : '';
  }

  deceptive(name) {
    for (const c of name) {
      if (c.charCodeAt(0) < 128) continue;
      if (this.scriptOf(c) !== 'Latin') return true;
      if (!Array.from(c.normalize('NFD')).some((d) => this.u.isCombining(d))) return true;
    }
    return false;
  }

  /** ``reason`` with the A-label next to the first mention of a deceptive Unicode name (ADR 0017). */
  readableReason(reason, asciiName) {
    if (!asciiName) return reason;
    const shown = unicodeOf(asciiName);
    if (shown === asciiName || !this.deceptive(shown) || reason.includes(`(${asciiName})`)) return reason;
    const at = reason.indexOf(shown);
    if (at < 0) return reason;
    const end = at + shown.length;
    return `${reason.slice(0, end)} (${asciiName})${reason.slice(end)}`;
  }
}

/** ``xn--rmy-5cd.mil`` -> ``аrmy.mil``: each label decoded on its own; one that does not decode stays. */
export function unicodeOf(asciiName) {
  if (!asciiName.toLowerCase().includes('xn--')) return asciiName;
  return asciiName
    .split('.')
    .map((label) => {
      if (label.slice(0, 4).toLowerCase() !== 'xn--' || !isAscii(label)) return label;
      try {
        return String.fromCodePoint(...punycodeDecode(label.slice(4)));
      } catch (err) {
        if (!isPunycodeError(err)) throw err;
        return label;
      }
    })
    .join('.');
}
