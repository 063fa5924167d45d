// Public suffixes: where the registrable part of a domain ends. Mirrors src/typoguard/core/suffixes.py over
// the ICANN rules of the Public Suffix List as the publicsuffixlist package applies them (content.suffixes).

const EDIT_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789-.';
const MEMO_LIMIT = 10000;

function memoSet(map, key, value) {
  if (map.size >= MEMO_LIMIT) map.clear();
  map.set(key, value);
  return value;
}

export class SuffixRules {
  constructor(s) {
    const rules = s.rules ? s.rules.split(' ') : [];
    this.plain = new Set();
    this.wildcards = new Set(); // "*.ck" held as "ck"
    this.exceptions = new Set(); // "!www.ck" held as "www.ck"
    for (const r of rules) {
      if (r.startsWith('*.')) this.wildcards.add(r.slice(2));
      else if (r.startsWith('!')) this.exceptions.add(r.slice(1));
      else this.plain.add(r);
    }
    this.maxLabels = s.max_labels;
    const known = new Set(rules.filter((r) => r[0] !== '*' && r[0] !== '!'));
    for (const r of s.known_extra) known.add(r);
    for (const r of s.known_missing) known.delete(r);
    this.known = known;
    this.lastDomain = null; // a check splits the same name several times: remember the last one
    this.lastSplit = null;
    this.oneEdit = new Map();
  }

  /** The number of labels of ``domain``'s public suffix: publicsuffixlist's _countpublic with
   * accept_unknown=True (0 for a name with an empty label). ``domain`` is lower case, no trailing dot. */
  countPublic(domain) {
    const starts = [0];
    for (let i = domain.indexOf('.'); i >= 0; i = domain.indexOf('.', i + 1)) starts.push(i + 1);
    const ll = starts.length;
    if (ll === 1) return 1;
    for (let k = 0; k < ll; k++) if (starts[k] === (k + 1 < ll ? starts[k + 1] - 1 : domain.length)) return 0;
    for (let i = Math.max(0, ll - (this.maxLabels + 1)); i < ll; i++) {
      const depth = ll - i;
      const s = domain.slice(starts[i]);
      if (this.exceptions.has(s)) return depth - 1;
      if (this.wildcards.has(s)) return i > 0 ? depth + 1 : depth;
      if (this.plain.has(s)) return depth;
    }
    return 1;
  }

  /** ``us.af.mil`` -> [``us.af``, ``mil``]; a bare suffix gives ["", suffix]. */
  split(domain) {
    if (domain === this.lastDomain) return this.lastSplit;
    const name = domain.toLowerCase();
    const publen = name ? this.countPublic(name) : 0;
    let suffix = '';
    if (publen) {
      let at = name.length;
      for (let k = 0; k < publen && at >= 0; k++) at = name.lastIndexOf('.', at - 1);
      suffix = at < 0 && publen > name.split('.').length ? '' : name.slice(at + 1);
    }
    if (!suffix) suffix = domain.slice(domain.lastIndexOf('.') + 1);
    const parts = suffix === domain ? ['', suffix] : [domain.slice(0, domain.length - suffix.length - 1), suffix];
    this.lastDomain = domain;
    this.lastSplit = parts;
    return parts;
  }

  isKnown(suffix) {
    return this.known.has(suffix);
  }

  /** Real public suffixes one edit (omission, insertion, replacement, transposition) from ``suffix``. */
  oneEditSuffixes(suffix) {
    const found = this.oneEdit.get(suffix);
    if (found !== undefined) return found;
    const cands = new Set();
    const n = suffix.length;
    for (let i = 0; i < n; i++) {
      cands.add(suffix.slice(0, i) + suffix.slice(i + 1));
      if (i + 1 < n) cands.add(suffix.slice(0, i) + suffix[i + 1] + suffix[i] + suffix.slice(i + 2));
      for (const ch of EDIT_ALPHABET) cands.add(suffix.slice(0, i) + ch + suffix.slice(i + 1));
    }
    for (let i = 0; i <= n; i++) for (const ch of EDIT_ALPHABET) cands.add(suffix.slice(0, i) + ch + suffix.slice(i));
    cands.delete(suffix);
    const out = new Set([...cands].filter((c) => this.known.has(c)));
    return memoSet(this.oneEdit, suffix, out);
  }

  /** The registrable domain (one label below the public suffix), or null for a bare suffix. */
  registrable(domain) {
    const [core, suffix] = this.split(domain);
    if (!core) return null;
    return core.slice(core.lastIndexOf('.') + 1) + '.' + suffix;
  }
}

let rows = [new Int32Array(64), new Int32Array(64), new Int32Array(64)];

/** Optimal string alignment distance (rapidfuzz's OSA), over code points; with ``max``, any distance above
 * it is returned as ``max + 1`` (as rapidfuzz's score_cutoff does), which lets it stop early. */
export function osaDistance(a, b, max = Infinity) {
  const s = hasSurrogate(a) ? Array.from(a, (c) => c.codePointAt(0)) : null;
  const t = hasSurrogate(b) ? Array.from(b, (c) => c.codePointAt(0)) : null;
  const n = s ? s.length : a.length;
  const m = t ? t.length : b.length;
  if (Math.abs(n - m) > max) return max + 1;
  if (n === 0) return m;
  if (m === 0) return n;
  const at = (i) => (s ? s[i] : a.charCodeAt(i));
  const bt = (j) => (t ? t[j] : b.charCodeAt(j));
  if (rows[0].length <= m) rows = [0, 1, 2].map(() => new Int32Array(2 * m + 2));
  let [prev2, prev, cur] = rows;
  for (let j = 0; j <= m; j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    let best = i;
    const ai = at(i - 1);
    for (let j = 1; j <= m; j++) {
      const bj = bt(j - 1);
      let v = prev[j - 1] + (ai === bj ? 0 : 1);
      if (prev[j] + 1 < v) v = prev[j] + 1;
      if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
      if (i > 1 && j > 1 && ai === bt(j - 2) && at(i - 2) === bj && prev2[j - 2] + 1 < v) v = prev2[j - 2] + 1;
      cur[j] = v;
      if (v < best) best = v;
    }
    if (best > max) return max + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  const d = prev[m];
  return d > max ? max + 1 : d;
}

function hasSurrogate(text) {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) return true;
  }
  return false;
}
