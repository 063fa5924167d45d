// Unicode for the detector: what Python's unicodedata, idna and codecs give the server, rebuilt from the
// bundle's tables (content.unicode) plus what JavaScript has natively (normalize(), \p{...} categories).
// Mirrors src/typoguard/core/confusables.py, the UTS #46 mapping of the idna package, Python's punycode
// codec and repr(). Strings are handled as code points wherever Python counts characters.

export class InvalidAddress extends Error {}

/** Python's str.isspace() characters (what str.strip() and \s remove). */
export const PY_SPACE = '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006' +
  '\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';
const SPACE_SET = new Set(PY_SPACE);
const STRIP_RE = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

export function isSpace(ch) {
  return SPACE_SET.has(ch);
}

/** Python's str.strip() with no argument. */
export function pyStrip(text) {
  return text.replace(STRIP_RE, '');
}

export function isAscii(text) {
  // eslint-disable-next-line no-control-regex
  return !/[^\x00-\x7f]/.test(text);
}

/** Length in code points (Python's len()), cheap for the usual BMP text. */
export function cpLen(text) {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n--; i++; }
    }
  }
  return n;
}

const REPLACING_UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });
const LONE_SURROGATE = /[\ud800-\udfff]/u; // with the u flag, only unpaired halves match

export function hasSurrogates(text) {
  return LONE_SURROGATE.test(text);
}

/** ``text`` with undecodable bytes (kept as U+DC80..U+DCFF, Python's surrogateescape) shown as U+FFFD. */
export function printable(text) {
  if (isAscii(text) || !hasSurrogates(text)) return text;
  return REPLACING_UTF8.decode(encodeSurrogateEscape(text));
}

/** UTF-8 bytes of ``text``; a lone U+DC80..U+DCFF is the byte it escapes (other lone halves: U+FFFD). */
export function encodeSurrogateEscape(text) {
  const out = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (cp >= 0xdc80 && cp <= 0xdcff) out.push(cp - 0xdc00);
    else if (cp >= 0xd800 && cp <= 0xdfff) out.push(0xef, 0xbf, 0xbd);
    else if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  }
  return Uint8Array.from(out);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes decoded as Python's ``bytes.decode("utf-8", "surrogateescape")``: a byte that starts no valid
 * sequence becomes U+DC80..U+DCFF, so invalid input stays visible as invalid (and is reported so). */
export function decodeSurrogateEscape(bytes) {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    // not valid UTF-8: decode by hand below
  }
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) { out += String.fromCharCode(b); i++; continue; }
    let need = 0; let cp = 0; let lo = 0x80; let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2; cp = b & 0x0f;
      if (b === 0xe0) lo = 0xa0; else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3; cp = b & 0x07;
      if (b === 0xf0) lo = 0x90; else if (b === 0xf4) hi = 0x8f;
    }
    let ok = need > 0;
    for (let k = 1; ok && k <= need; k++) {
      const c = i + k < bytes.length ? bytes[i + k] : -1;
      if (c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) ok = false;
      else cp = (cp << 6) | (c & 0x3f);
    }
    if (!ok) { out += String.fromCharCode(0xdc00 + b); i++; continue; }
    out += String.fromCodePoint(cp);
    i += need + 1;
  }
  return out;
}

// ------------------------------------------------------------------------------------------ repr()
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

function hex(n, width) {
  return n.toString(16).padStart(width, '0');
}

/** Python's repr() of a str. */
export function pyRepr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + hex(cp, 2);
    else if (cp < 0x7f) out += ch;
    else if (cp === 0x20 || !NOT_PRINTABLE.test(ch)) out += ch;
    else if (cp <= 0xff) out += '\\x' + hex(cp, 2);
    else if (cp <= 0xffff) out += '\\u' + hex(cp, 4);
    else out += '\\U' + hex(cp, 8);
  }
  return out + quote;
}

// ------------------------------------------------------------------------------------------ punycode
// Python's encodings/punycode.py, step for step (its error messages are part of ours).
function adapt(delta, first, numchars) {
  delta = first ? delta / 700n : delta / 2n;
  delta += delta / numchars;
  let divisions = 0n;
  while (delta > 455n) {
    delta /= 35n;
    divisions += 36n;
  }
  return divisions + (36n * delta) / (delta + 38n);
}

function threshold(j, bias) {
  const res = 36n * (j + 1n) - bias;
  return res < 1n ? 1n : res > 26n ? 26n : res;
}

const DIGITS = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** ``label.encode("punycode")`` for a label of code points (the part after ``xn--``). */
export function punycodeEncode(text) {
  const cps = Array.from(text, (c) => c.codePointAt(0));
  const base = cps.filter((c) => c < 128).map((c) => String.fromCharCode(c)).join('');
  const extended = [...new Set(cps.filter((c) => c >= 128))].sort((a, b) => a - b);
  const deltas = [];
  let oldchar = 0x80;
  let oldindex = -1;
  for (const char of extended) {
    let index = -1;
    let pos = -1;
    const curlen = cps.reduce((n, c) => n + (c < char ? 1 : 0), 0);
    let delta = (curlen + 1) * (char - oldchar);
    for (;;) {
      // selective_find
      let found = false;
      while (++pos < cps.length) {
        const c = cps[pos];
        if (c === char) { index += 1; found = true; break; }
        if (c < char) index += 1;
      }
      if (!found) break;
      delta += index - oldindex;
      deltas.push(delta - 1);
      oldindex = index;
      delta = 0;
    }
    oldchar = char;
  }
  let out = '';
  let bias = 72n;
  deltas.forEach((d, points) => {
    let n = BigInt(d);
    for (let j = 0n; ; j++) {
      const t = threshold(j, bias);
      if (n < t) { out += DIGITS[Number(n)]; break; }
      out += DIGITS[Number(t + ((n - t) % (36n - t)))];
      n = (n - t) / (36n - t);
    }
    bias = adapt(BigInt(d), points === 0, BigInt(base.length + points + 1));
  });
  return base ? `${base}-${out}` : out;
}

class PunycodeError extends Error {}

/** ``text.encode("ascii").decode("punycode")`` as code points; throws with Python's message. */
export function punycodeDecode(text) {
  const wrap = (why) => new PunycodeError(`decoding with 'punycode' codec failed (UnicodeError: ${why})`);
  const pos0 = text.lastIndexOf('-');
  const base = pos0 === -1 ? [] : Array.from(text.slice(0, pos0), (c) => c.codePointAt(0));
  const extended = (pos0 === -1 ? text : text.slice(pos0 + 1)).toUpperCase();
  let char = 0x80n;
  let pos = -1n;
  let bias = 72n;
  let extpos = 0;
  while (extpos < extended.length) {
    // decode_generalized_number
    let result = 0n;
    let w = 1n;
    let j = 0n;
    let p = extpos;
    for (;;) {
      if (p >= extended.length) throw wrap('incomplete punicode string');
      const c = extended.charCodeAt(p);
      p += 1;
      let digit;
      if (c >= 0x41 && c <= 0x5a) digit = BigInt(c - 0x41);
      else if (c >= 0x30 && c <= 0x39) digit = BigInt(c - 22);
      else throw wrap(`Invalid extended code point '${extended[p - 1]}'`);
      const t = threshold(j, bias);
      result += digit * w;
      if (digit < t) break;
      w *= 36n - t;
      j += 1n;
    }
    const delta = result;
    pos += delta + 1n;
    const size = BigInt(base.length + 1);
    char += pos / size;
    if (char > 0x10ffffn) throw wrap(`Invalid character U+${char.toString(16)}`);
    pos %= size;
    base.splice(Number(pos), 0, Number(char));
    bias = adapt(delta, extpos === 0, BigInt(base.length));
    extpos = p;
  }
  return base;
}

export function isPunycodeError(err) {
  return err instanceof PunycodeError;
}

// ------------------------------------------------------------------------------------------ tables
function undelta(deltas) {
  const out = new Array(deltas.length);
  let v = 0;
  for (let i = 0; i < deltas.length; i++) { v += deltas[i]; out[i] = v; }
  return out;
}

function bisectRight(arr, x) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x < arr[mid]) hi = mid; else lo = mid + 1;
  }
  return lo;
}

const STD3_DISALLOWED = /[\x00-\x2c\x2f\x3a-\x40A-Z\x5b-\x60\x7b-\x7f]/; // eslint-disable-line no-control-regex
const I_AS_L = { i: 'l', 1: 'l' };
const CATEGORY_MNPZS = /^[\p{M}\p{N}\p{P}\p{Z}\p{S}]$/u;
const CATEGORY_LMNS = /^[\p{L}\p{M}\p{N}\p{S}]$/u;

export class CodepointError extends Error {
  constructor(cp) {
    super(`Codepoint U+${cp.toString(16).toUpperCase().padStart(4, '0')} not allowed`);
    this.codePoint = cp;
  }
}

/** A packed character table (an entry a line: the character, then its value) as a Map. */
function unpack(text) {
  const map = new Map();
  if (!text) return map;
  for (const line of text.split('\n')) {
    const cp = line.codePointAt(0);
    const n = cp > 0xffff ? 2 : 1;
    map.set(line.slice(0, n), line.slice(n));
  }
  return map;
}

/** The Unicode data of one bundle (``content.unicode``). Tables are built when first needed: an ASCII
 * recipient needs none but the ASCII skeletons, so loading a bundle stays quick. */
export class UnicodeData {
  constructor(u) {
    this.raw = u;
    this.asciiSkeleton = u.ascii_skeleton;
    this.skeletonCache = new Map();
    this.tables = null;
  }

  get t() {
    if (this.tables === null) this.tables = this.build(this.raw);
    return this.tables;
  }

  build(u) {
    const t = {
      confusables: unpack(u.confusables),
      casefold: unpack(u.casefold),
      combining: new Set(),
      fold: unpack(u.fold),
      names: unpack(u.names.names),
      nameWords: u.names.words.split(' '),
      scriptStarts: undelta(u.scripts.starts),
      scriptWords: u.scripts.index.map((i) => u.scripts.words[i]),
      uts46Starts: undelta(u.uts46.starts),
      uts46Status: u.uts46.status,
      uts46Mapped: new Array(u.uts46.status.length),
    };
    for (const [a, b] of u.combining) for (let c = a; c <= b; c++) t.combining.add(c);
    const mapped = u.uts46.mapped.split('\n');
    let m = 0;
    for (let i = 0; i < t.uts46Status.length; i++) if (t.uts46Status[i] === 'M') t.uts46Mapped[i] = mapped[m++];
    return t;
  }

  /** ``unicodedata.name(ch).lower()`` for the characters the bundle names; undefined for the others. */
  name(ch) {
    const coded = this.t.names.get(ch);
    if (coded === undefined) return undefined;
    const words = this.t.nameWords;
    return coded.split(' ').map((c) => words[parseInt(c, 36)]).join(' ');
  }

  /** The first word of a character's Unicode name ("" if it has none). */
  nameWord(ch) {
    const t = this.t;
    return t.scriptWords[bisectRight(t.scriptStarts, ch.codePointAt(0)) - 1];
  }

  isCombining(ch) {
    return this.t.combining.has(ch.codePointAt(0));
  }

  casefoldText(text) {
    const casefold = this.t.casefold;
    let out = '';
    for (const ch of text) out += casefold.get(ch) ?? ch;
    return out;
  }

  // UTS #39 skeleton (core/confusables.py skeleton()).
  skeletonOf(text) {
    const confusables = this.t.confusables;
    let mapped = '';
    for (const ch of text.normalize('NFD')) mapped += confusables.get(ch) ?? ch;
    return mapped.normalize('NFD');
  }

  slowSkeleton(text) {
    let sk = this.casefoldText(this.skeletonOf(text));
    sk = this.casefoldText(this.skeletonOf(sk));
    let out = '';
    for (const ch of sk) {
      if (this.isCombining(ch)) continue;
      out += I_AS_L[ch] ?? ch;
    }
    return out;
  }

  /** DomainSkeletons.of: the skeleton tuned for host names. */
  skeleton(text) {
    let sk = '';
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 128) return this.cachedSlowSkeleton(text);
      sk += this.asciiSkeleton[c];
    }
    return sk;
  }

  cachedSlowSkeleton(text) {
    let sk = this.skeletonCache.get(text);
    if (sk === undefined) {
      sk = this.slowSkeleton(text);
      if (this.skeletonCache.size > 10000) this.skeletonCache.clear();
      this.skeletonCache.set(text, sk);
    }
    return sk;
  }

  /** fold_to_ascii: every character as the ASCII letter it reads as, or null. */
  fold(text) {
    let out = '';
    for (const ch of text.normalize('NFC')) {
      if (ch.charCodeAt(0) < 128) { out += ch.toLowerCase(); continue; }
      const f = this.t.fold.get(ch);
      if (f === undefined) return null;
      out += f;
    }
    return out;
  }

  /** idna.uts46_remap(text, std3_rules=True) for non-ASCII text; throws CodepointError. */
  uts46Remap(domain) {
    const t = this.t;
    const cps = Array.from(domain);
    const output = [];
    let start = 0;
    const std3 = (run) => {
      const m = STD3_DISALLOWED.exec(run);
      if (m) throw new CodepointError(m[0].codePointAt(0));
    };
    for (let pos = 0; pos < cps.length; pos++) {
      const cp = cps[pos].codePointAt(0);
      const i = bisectRight(t.uts46Starts, cp) - 1;
      const status = t.uts46Status[i];
      let replacement;
      if (status === 'V' || status === 'D') continue;
      if (status === 'M') replacement = t.uts46Mapped[i];
      else if (status === 'I') replacement = null;
      else throw new CodepointError(cp);
      if (start < pos) {
        const run = cps.slice(start, pos).join('');
        std3(run);
        output.push(run);
      }
      if (replacement) {
        if (STD3_DISALLOWED.test(replacement)) throw new CodepointError(cp);
        output.push(replacement);
      }
      start = pos + 1;
    }
    if (start === 0) {
      std3(domain);
      return domain.normalize('NFC');
    }
    const tail = cps.slice(start).join('');
    std3(tail);
    output.push(tail);
    return output.join('').normalize('NFC');
  }

  /** unicodedata.category(ch)[0] in "MNPZS". */
  static isMNPZS(ch) {
    return CATEGORY_MNPZS.test(ch);
  }

  /** unicodedata.category(ch)[0] in "LMNS" (a character a name shows). */
  static shows(ch) {
    return CATEGORY_LMNS.test(ch);
  }
}
