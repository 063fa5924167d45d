// Public suffixes: where the registrable part of a domain ends. Mirrors src/typoguard/core/suffixes.py over
// the ICANN rules of the Public Suffix List as the publicsuffixlist package applies them (content.suffixes).

const EDIT_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789-.';
const MEMO_LIMIT = 100000;

function memoSet(map, key, value) {
  if (map.size >= MEMO_LIMIT) map.clear();
  map.set(key, value);
  return value;
}

export class SuffixRules {
  constructor(s) {
    this.rules = new Set(s.rules ? s.rules.split(' ') : []);
    this.maxLabels = s.max_labels;
    const known = new Set([...this.rules].filter((r) => r[0] !== '*' && r[0] !== '!'));
    for (const r of s.known_extra) known.add(r);
    for (const r of s.known_missing) known.delete(r);
    this.known = known;
    this.splits = new Map();
    this.oneEdit = new Map();
  }

  /** publicsuffixlist's _countpublic (accept_unknown=True): how many labels the public suffix has. */
  countPublic(labels) {
    const ll = labels.length;
    if (ll === 1) return 1;
    const startfrom = Math.max(0, ll - (this.maxLabels + 1));
    for (let i = startfrom; i < ll; i++) {
      const depth = ll - i;
      const s = labels.slice(i).join('.');
      if (this.rules.has('!' + s)) return depth - 1;
      if (this.rules.has('*.' + s)) return i > 0 ? depth + 1 : depth;
      if (this.rules.has(s)) return depth;
    }
    return 1;
  }

  publicSuffix(domain) {
    if (domain.endsWith('.')) domain = domain.slice(0, -1);
    const labels = domain.toLowerCase().split('.');
    if (labels.includes('')) return null;
    const publen = this.countPublic(labels);
    if (!publen || labels.length < publen) return null;
    return labels.slice(-publen).join('.');
  }

  /** ``us.af.mil`` -> [``us.af``, ``mil``]; a bare suffix gives ["", suffix]. */
  split(domain) {
    const found = this.splits.get(domain);
    if (found !== undefined) return found;
    const suffix = this.publicSuffix(domain) || domain.slice(domain.lastIndexOf('.') + 1);
    const parts = suffix === domain ? ['', suffix] : [domain.slice(0, domain.length - suffix.length - 1), suffix];
    return memoSet(this.splits, domain, parts);
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

/** Optimal string alignment distance (rapidfuzz's OSA), over code points. */
export function osaDistance(a, b) {
  const s = a.length === cpLenFast(a) ? a : Array.from(a);
  const t = b.length === cpLenFast(b) ? b : Array.from(b);
  const n = s.length;
  const m = t.length;
  if (n === 0) return m;
  if (m === 0) return n;
  let prev2 = new Array(m + 1).fill(0);
  let prev = new Array(m + 1);
  let cur = new Array(m + 1);
  for (let j = 0; j <= m; j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let v = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) v = Math.min(v, prev2[j - 2] + 1);
      cur[j] = v;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m];
}

function cpLenFast(text) {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) return -1;
  }
  return text.length;
}
