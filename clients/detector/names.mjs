// Recipient and domain names: parsing, validation, normalisation. Mirrors src/typoguard/core/names.py,
// error sentences included (they are the "error" and "reason" of an invalid recipient).

import {
  CodepointError,
  InvalidAddress,
  UnicodeData,
  cpLen,
  hasSurrogates,
  isAscii,
  isPunycodeError,
  printable,
  punycodeDecode,
  punycodeEncode,
  pyRepr,
  pyStrip,
  PY_SPACE,
} from './unicode.mjs';

export const MAX_DOMAIN_OCTETS = 253;
export const MAX_LABEL_OCTETS = 63;
export const MAX_LOCAL_OCTETS = 64;
const MAX_TYPED_DOMAIN_CHARS = 4 * MAX_DOMAIN_OCTETS + 1;
const MAX_RECIPIENT_CHARS = 2 + MAX_LOCAL_OCTETS + 1 + MAX_TYPED_DOMAIN_CHARS;

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DOT_ATOM_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u{80}-\u{10FFFF}]+$/u;
const ADDRESS_LITERAL = /^\[[^[\]]*\]$/;
const FULL_STOPS = new Set(['.', '\u3002', '\uff0e', '\uff61']);
// eslint-disable-next-line no-control-regex
const SPACE_OR_CONTROL = new RegExp(`[${PY_SPACE}\\x00-\\x1f\\x7f-\\x9f]`);
const ALLOWED_SCRIPT_SETS = [
  new Set(['LATIN', 'HAN', 'HIRAGANA', 'KATAKANA']),
  new Set(['LATIN', 'HAN', 'BOPOMOFO']),
  new Set(['LATIN', 'HAN', 'HANGUL']),
];

/** A validated domain: ``ascii`` the canonical key, ``unicode`` what a person reads, ``asTyped`` the name
 * as typed when UTS #46 mapping changed more than case. */
export class Domain {
  constructor(ascii, unicode, asTyped = null) {
    this.ascii = ascii;
    this.unicode = unicode;
    this.asTyped = asTyped;
  }

  get isIdn() {
    return this.ascii !== this.unicode;
  }
}

function fail(text, why) {
  const cps = Array.from(text);
  let shown = printable(cps.slice(0, 80).join(''));
  if (cps.length > 80) shown = Array.from(shown).slice(0, 77).join('') + '...';
  return new InvalidAddress(`${pyRepr(shown)}: ${why}`);
}

function checkText(text) {
  if (hasSurrogates(text)) throw fail(text, 'not valid UTF-8');
  if (SPACE_OR_CONTROL.test(text)) throw fail(text, 'contains white space or control characters');
}

function checkLengths(text, name, labels) {
  if (name.length > MAX_DOMAIN_OCTETS) {
    throw fail(text, `domain is ${name.length} characters long, more than the ${MAX_DOMAIN_OCTETS} allowed`);
  }
  if (labels.length < 2) throw fail(text, 'a mail domain needs at least two labels (e.g. example.org)');
  for (const label of labels) {
    if (!label) throw fail(text, 'empty label (two dots in a row, or a leading dot)');
    if (label.length > MAX_LABEL_OCTETS) {
      throw fail(text, `label of ${label.length} characters, more than the ${MAX_LABEL_OCTETS} allowed`);
    }
  }
}

function ldhProblem(label) {
  if (label.startsWith('-') || label.endsWith('-')) {
    return `label ${pyRepr(label)} starts or ends with a hyphen`;
  }
  const bad = [...new Set(Array.from(label).filter((ch) => !(/^[\p{L}\p{N}]$/u.test(ch) || ch === '-')))];
  bad.sort((a, b) => a.codePointAt(0) - b.codePointAt(0));
  return `label ${pyRepr(label)} contains ${pyRepr(bad.join(''))}, not allowed in a host name`;
}

function labelToAscii(label) {
  return isAscii(label) ? label : 'xn--' + punycodeEncode(label);
}

/** Name rules over one bundle's Unicode data. */
export class NameRules {
  /** @param {UnicodeData} u */
  constructor(u) {
    this.u = u;
  }

  displayLabel(text, label) {
    if (!label.startsWith('xn--')) return label;
    let decoded;
    try {
      decoded = punycodeDecode(label.slice(4));
    } catch (err) {
      if (!isPunycodeError(err)) throw err;
      throw fail(text, `invalid internationalised label ${pyRepr(label)}: malformed punycode (${err.message})`);
    }
    if (!decoded.length || decoded.every((c) => c < 128)) return label;
    for (const c of decoded) {
      if (c >= 0xd800 && c <= 0xdfff) return label; // a lone surrogate shows nothing
      if (!UnicodeData.shows(String.fromCodePoint(c)) && c !== 0x2d) return label;
    }
    return String.fromCodePoint(...decoded);
  }

  codepointProblem(err) {
    const ch = String.fromCodePoint(err.codePoint);
    const code = err.codePoint.toString(16).toUpperCase().padStart(4, '0');
    return `${pyRepr(ch)} (U+${code} ${this.u.name(ch) ?? 'unnamed'}) is not allowed in a host name`;
  }

  /** normalise_domain(): validate ``text`` as a mail domain; throws InvalidAddress. */
  normaliseDomain(text) {
    if (!text) throw new InvalidAddress('empty domain');
    const asciiText = isAscii(text);
    const n = asciiText ? text.length : cpLen(text);
    if (n > (asciiText ? MAX_DOMAIN_OCTETS + 1 : MAX_TYPED_DOMAIN_CHARS)) {
      throw fail(text, `${n} characters, longer than any domain name (${MAX_DOMAIN_OCTETS} allowed)`);
    }
    checkText(text);
    let name = FULL_STOPS.has(text[text.length - 1]) ? text.slice(0, -1) : text;
    if (!name) throw fail(text, 'empty domain');
    if (asciiText) {
      name = name.toLowerCase();
      const labels = name.split('.');
      checkLengths(text, name, labels);
      for (const label of labels) if (!LDH_LABEL.test(label)) throw fail(text, ldhProblem(label));
      if (!name.includes('xn--')) return new Domain(name, name);
      return new Domain(name, labels.map((l) => this.displayLabel(text, l)).join('.'));
    }
    let mapped;
    try {
      mapped = this.u.uts46Remap(name);
    } catch (err) {
      if (!(err instanceof CodepointError)) throw err;
      throw fail(text, `not a valid host name: ${this.codepointProblem(err)}`);
    }
    const ulabels = mapped.split('.');
    const alabels = ulabels.map(labelToAscii);
    const aname = alabels.join('.');
    checkLengths(text, aname, alabels);
    for (const label of alabels) if (!LDH_LABEL.test(label)) throw fail(text, ldhProblem(label));
    const unicode = alabels.map((l) => this.displayLabel(text, l)).join('.');
    const typed = asTyped(name, ulabels);
    return new Domain(aname, unicode, typed);
  }

  /** parse_recipient(): {local, domain, literal}; throws InvalidAddress. */
  parseRecipient(text) {
    let raw;
    if (text.length > MAX_RECIPIENT_CHARS && cpLen(text) > MAX_RECIPIENT_CHARS) {
      raw = pyStrip(text);
      const n = cpLen(raw);
      if (n > MAX_RECIPIENT_CHARS) throw fail(raw, `${n} characters, longer than any address`);
    }
    raw = pyStrip(text);
    if (raw.startsWith('<') && raw.endsWith('>')) raw = pyStrip(raw.slice(1, -1));
    if (!raw) throw new InvalidAddress('empty recipient');
    if (hasSurrogates(raw)) throw fail(raw, 'not valid UTF-8');
    const at = raw.lastIndexOf('@');
    if (at < 0) {
      if (!raw.replace(/\.+$/, '').includes('.')) throw fail(raw, "no '@' and not a domain name");
      return { local: null, domain: this.normaliseDomain(raw), literal: null };
    }
    const local = raw.slice(0, at);
    const domainText = raw.slice(at + 1);
    checkLocalPart(local, raw);
    if (ADDRESS_LITERAL.test(domainText)) return { local, domain: null, literal: domainText };
    if (!domainText) throw fail(raw, "nothing after '@'");
    return { local, domain: this.normaliseDomain(domainText), literal: null };
  }

  /** char_script(): the script of ``ch`` as the first word of its name; null for digits, marks... */
  charScript(ch) {
    if (ch.charCodeAt(0) < 128) return /[A-Za-z]/.test(ch) ? 'LATIN' : null;
    if (UnicodeData.isMNPZS(ch)) return null;
    const word = this.u.nameWord(ch);
    if (word.startsWith('CJK')) return 'HAN';
    return word || null;
  }

  /** mixed_script_labels(): labels mixing scripts as registries forbid (UTS #39 highly restrictive). */
  mixedScriptLabels(domain) {
    const bad = [];
    for (const label of domain.unicode.split('.')) {
      if (isAscii(label)) continue;
      const scripts = new Set();
      for (const ch of label) {
        const s = this.charScript(ch);
        if (s !== null) scripts.add(s);
      }
      if (scripts.size > 1 && !ALLOWED_SCRIPT_SETS.some((allowed) => [...scripts].every((s) => allowed.has(s)))) {
        bad.push(label);
      }
    }
    return bad;
  }
}

function asTyped(name, mappedLabels) {
  let typed = name.toLowerCase().normalize('NFC');
  typed = typed.replace(/[\u3002\uff0e\uff61]/g, '.');
  const labels = typed.split('.');
  if (labels.length === mappedLabels.length && labels.every((l, i) => l === mappedLabels[i])) return null;
  const alabels = labels.map(labelToAscii);
  const aname = alabels.join('.');
  if (
    aname.length > MAX_DOMAIN_OCTETS ||
    !alabels.every((l) => l && l.length <= MAX_LABEL_OCTETS) ||
    !alabels.every((l) => LDH_LABEL.test(l))
  ) {
    return null;
  }
  return new Domain(aname, typed);
}

/** check_local_part(): validate an address's local part (RFC 5321/5322, RFC 6531 UTF-8). */
export function checkLocalPart(local, whole) {
  if (!local) throw fail(whole, "nothing before '@'");
  if (cpLen(local) > MAX_LOCAL_OCTETS || new TextEncoder().encode(local).length > MAX_LOCAL_OCTETS) {
    throw fail(whole, `local part longer than ${MAX_LOCAL_OCTETS} octets`);
  }
  if (local.startsWith('"')) {
    const escapedEnd = local.endsWith('\\"') && !local.endsWith('\\\\"');
    if (cpLen(local) < 2 || !local.endsWith('"') || escapedEnd) throw fail(whole, 'unterminated quoted local part');
    if (hasSurrogates(local)) throw fail(whole, 'not valid UTF-8');
    return;
  }
  checkText(local);
  if (!DOT_ATOM_LOCAL.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    throw fail(whole, 'local part has characters or dots that need quoting');
  }
}

export { InvalidAddress };
