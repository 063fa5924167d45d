// The look-alike index: a typed domain in, findings (best first) out. Mirrors LookalikeIndex.lookup in
// src/typoguard/core/index.py probe for probe. The typo models are not here: their variants come compiled in
// the bundle (content.variants); what is computed here is only what the look-up computes on the server.

import { describeChange } from './describe.mjs';
import { osaDistance } from './suffixes.mjs';
import { InvalidAddress, cpLen, isAscii } from './unicode.mjs';

/** Evidence that ``typed`` may be a slip for the protected domain ``intended``. */
export class Finding {
  constructor(typed, intended, kind, score, reason) {
    this.typed = typed;
    this.intended = intended;
    this.kind = kind;
    this.score = score;
    this.reason = reason;
  }
}

function clip(score) {
  return score < 0 ? 0.0 : score > 1 ? 1.0 : score;
}

function lastLabel(core) {
  return core.slice(core.lastIndexOf('.') + 1);
}

/** The Unicode form of the core: ``unicode`` without as many labels as ``suffix`` has (and their dots). */
function unicodeCore(unicode, suffix) {
  let at = unicode.length;
  for (let i = suffix.indexOf('.'); ; i = suffix.indexOf('.', i + 1)) {
    at = unicode.lastIndexOf('.', at - 1);
    if (at < 0) return '';
    if (i < 0) return unicode.slice(0, at);
  }
}

/** ``word`` and every string made by deleting up to ``depth`` (1 or 2) of its characters. */
export function deletes(word, depth) {
  if (!hasPair(word)) {
    const out = new Set();
    eachDelete(word, depth, (d) => out.add(d));
    return out;
  }
  const w = Array.from(word);
  const n = w.length;
  const one = new Set();
  for (let i = 0; i < n; i++) one.add(w.slice(0, i).concat(w.slice(i + 1)).join(''));
  if (depth < 2) {
    one.add(word);
    return one;
  }
  const two = new Set();
  for (const x of one) {
    const a = Array.from(x);
    for (let i = 0; i < n - 1; i++) two.add(a.slice(0, i).concat(a.slice(i + 1)).join(''));
  }
  for (const x of one) two.add(x);
  two.add(word);
  return two;
}

/** Calls ``fn`` with ``word`` and every string made by deleting up to ``depth`` (1 or 2) of its characters,
 * some more than once: the set ``deletes()`` returns, without building it (the fuzzy stage's hot loop). */
function eachDelete(word, depth, fn) {
  if (hasPair(word)) {
    for (const d of deletes(word, depth)) fn(d);
    return;
  }
  const n = word.length;
  fn(word);
  for (let i = 0; i < n; i++) {
    const head = word.slice(0, i);
    const one = head + word.slice(i + 1);
    fn(one);
    if (depth < 2) continue;
    for (let j = i + 1; j < n; j++) fn(head + word.slice(i + 1, j) + word.slice(j + 1));
  }
}

function hasPair(text) {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) return true;
  }
  return false;
}

// Up to this many protected domains, the fuzzy stages test each of them (fewCandidates) instead of building
// the query's deletions; beyond it the deletion tables are quicker.
const FEW_PROTECTED = 64;

/** The characters of ``text`` as two bit sets ([a-z], [0-9.-]), or null for any other character. */
function charMask(text) {
  let letters = 0;
  let others = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 97 && c <= 122) letters |= 1 << (c - 97);
    else if (c >= 48 && c <= 57) others |= 1 << (c - 48);
    else if (c === 45) others |= 1 << 10;
    else if (c === 46) others |= 1 << 11;
    else return null;
  }
  return [letters, others];
}

function bits(x) {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function push(map, key, value) {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else if (list[list.length - 1] !== value) list.push(value);
}

export class LookalikeIndex {
  /**
   * @param {object} content the bundle's content
   * @param {import('./suffixes.mjs').SuffixRules} suffixes
   * @param {import('./unicode.mjs').UnicodeData} u
   * @param {import('./describe.mjs').Describer} describe
   * @param {import('./names.mjs').NameRules} names
   */
  constructor(content, suffixes, u, describe, names) {
    this.suffixes = suffixes;
    this.u = u;
    this.describe = describe;
    this.names = names;
    const fields = content.protected_fields;
    const at = (name) => fields.indexOf(name);
    const cols = ['domain', 'core', 'suffix', 'unicode', 'ucore', 'registrable', 'weight', 'skeleton', 'core_skeleton'];
    const idx = cols.map(at);
    if (idx.some((i) => i < 0)) throw new Error('bundle: protected_fields lacks a field this detector needs');
    this.protected = content.protected.map((row) => {
      const p = {};
      cols.forEach((c, i) => { p[c] = row[idx[i]]; });
      return p;
    });
    this.kinds = content.models.map((m) => m[0]);
    this.priors = content.models.map((m) => m[1]);
    this.allPriors = content.priors;
    this.variants = new Map();
    if (content.variants) {
      for (const line of content.variants.split('\n')) {
        const eq = line.indexOf('=');
        const entries = line.slice(eq + 1);
        this.variants.set(line.slice(0, eq), entries.includes(',') ? entries.split(',').map(Number) : Number(entries));
      }
    }
    this.wordText = content.common_words;
    this.wordSet = null; // built when a match is first damped-or-not
    const s = content.scoring;
    this.sc = {
      ...s,
      oneEditKinds: new Set(s.one_edit_kinds),
      dotKinds: new Set(s.dot_kinds),
      damped: new Set(s.damped_for_short_names),
    };
    this.domains = new Set(this.protected.map((p) => p.domain));
    this.registrables = new Set(this.protected.map((p) => p.registrable));
    this.coreExact = new Map();
    this.skeletonFull = new Map();
    this.skeletonCore = new Map();
    this.deletes = new Map();
    this.skeletonDeletes = new Map();
    this.byDomain = new Map();
    this.byRegistrable = new Map();
    this.maxCore = 0;
    this.maxLabels = 2;
    this.fuzzyEligible = [];
    this.protected.forEach((p, pidx) => {
      p.coreMask = charMask(p.core);
      p.skeletonMask = charMask(p.core_skeleton);
      push(this.coreExact, p.core, pidx);
      push(this.skeletonFull, p.skeleton, pidx);
      push(this.skeletonCore, p.core_skeleton, pidx);
      if (p.core.length >= s.fuzzy_one_min_len) {
        this.fuzzyEligible.push(pidx);
        const depth = p.core.length >= s.fuzzy_two_min_len ? 2 : 1;
        for (const d of deletes(p.core, depth)) push(this.deletes, d, pidx);
        for (const d of deletes(p.core_skeleton, 1)) push(this.skeletonDeletes, d, pidx);
      }
      this.maxCore = Math.max(this.maxCore, p.core.length);
      this.maxLabels = Math.max(this.maxLabels, p.domain.split('.').length);
      this.byDomain.set(p.domain, pidx);
      if (!this.byRegistrable.has(p.registrable)) this.byRegistrable.set(p.registrable, pidx);
    });
  }

  lengthFactor(core) {
    return this.sc.length_factors[String(lastLabel(core).length)] ?? 1.0;
  }

  prior(kind) {
    const i = this.kinds.indexOf(kind);
    return i >= 0 ? this.priors[i] : this.allPriors[kind];
  }

  /** The domain is protected, or a subdomain of a protected domain's organisation. */
  isProtected(domain) {
    if (this.domains.has(domain)) return true;
    return this.registrables.has(this.suffixes.registrable(domain));
  }

  /** Findings for a normalised domain, best first; empty if it looks like nothing protected. */
  lookup(domain) {
    if (this.isProtected(domain.ascii)) return [];
    const found = this.lookupWhole(domain);
    return found.length ? found : this.underALookalike(domain);
  }

  /** Findings for the name as a whole (lookup without the hosts under a look-alike). */
  lookupWhole(domain) {
    const name = domain.ascii;
    const [qcore, qsuffix] = this.suffixes.split(name);
    const q = { name, core: qcore, suffix: qsuffix, unicode: domain.unicode, ucore: unicodeCore(domain.unicode, qsuffix) };
    const found = new Map();
    if (!isAscii(q.unicode)) this.probeMapped(q, found);
    if (qcore) {
      this.probeExact(q, found);
      this.probeVariants(q, found, true);
    }
    this.probeSkeletons(q, found);
    if (!found.size && qcore && !isAscii(q.ucore)) this.probeFolded(q, found);
    if (!found.size && qcore) this.probeFuzzy(q, found);
    if (!found.size && qcore) this.probeSkeletonFuzzy(q, found);
    return [...found.values()].sort((a, b) => {
      if (a.score !== b.score) return b.score - a.score;
      const x = a.intended ?? '';
      const y = b.intended ?? '';
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }

  /** Findings for a host under a look-alike (us.army.ml under army.ml, which looks like army.mil;
   * mail.ca.ibm.co under ca.ibm.co): whoever owns that name receives the host's mail, and the sender meant
   * the same host under the protected domain (us.army.mil). The parents tried are those a look-alike can
   * be: from one label more than the longest protected domain down to the registrable domain, the longest
   * with a finding wins. Empty for anything else. (core/index.py: _under_a_lookalike) */
  underALookalike(domain) {
    const name = domain.ascii;
    const labels = name.split('.');
    let ulabels = domain.unicode.split('.');
    if (ulabels.length !== labels.length) ulabels = labels;
    const registrable = this.suffixes.registrable(name);
    const shortest = registrable ? registrable.split('.').length : 2;
    const longest = Math.min(labels.length - 1, this.maxLabels + 1);
    for (let size = longest; size >= shortest; size--) {
      const cut = labels.length - size;
      const parent = labels.slice(cut).join('.');
      const uparent = ulabels.slice(cut).join('.');
      // (never protected: it shares the name's registrable domain, which lookup checked)
      const found = this.lookupWhole({ ascii: parent, unicode: uparent });
      if (found.length) {
        const host = labels.slice(0, cut).join('.');
        return found.map((f) => new Finding(
          name,
          f.intended ? `${host}.${f.intended}` : null,
          f.kind,
          f.score,
          `${domain.unicode} is a host under ${uparent}; ${f.reason}`,
        ));
      }
    }
    return [];
  }

  keep(found, pidx, finding) {
    const old = found.get(pidx);
    if (old === undefined || finding.score > old.score) found.set(pidx, finding);
  }

  finding(q, p, kind, score, why) {
    return new Finding(q.name, p.domain, kind, clip(score * p.weight), `${q.unicode} looks like ${p.unicode} ${why}`);
  }

  suffixRelation(qsuffix, p) {
    if (qsuffix === p.suffix) return 'same';
    if (this.suffixes.oneEditSuffixes(p.suffix).has(qsuffix)) return 'typo';
    if (!this.suffixes.isKnown(qsuffix) && osaDistance(qsuffix, p.suffix) === 1) return 'unreal_typo';
    return 'other';
  }

  combineSuffix(q, p, kind, score, why) {
    const rel = this.suffixRelation(q.suffix, p);
    if (rel === 'typo' || rel === 'unreal_typo') {
      return [`${kind}+suffix_typo`, score * this.sc.suffix_typo_factor,
        `${why}, and ${describeChange(q.suffix, p.suffix, '.' + p.suffix)}`];
    }
    if (rel === 'other') {
      let swapped = score * this.sc.suffix_swap_factor;
      if (this.sc.oneEditKinds.has(kind)) {
        const floor = this.sc.prior_one_edit_and_swap * this.lengthFactor(p.core);
        if (floor > swapped) swapped = floor;
      }
      return [`${kind}+suffix_swap`, swapped, `${why}, under .${q.suffix} instead of .${p.suffix}`];
    }
    return [kind, score, why];
  }

  probeExact(q, found) {
    for (const pidx of this.coreExact.get(q.core) ?? []) {
      const p = this.protected[pidx];
      const rel = this.suffixRelation(q.suffix, p);
      const change = describeChange(q.suffix, p.suffix, '.' + p.suffix);
      let kind; let prior; let why;
      if (rel === 'typo') {
        [kind, prior, why] = ['suffix_typo', this.prior('suffix_typo'), change];
      } else if (rel === 'unreal_typo') {
        [kind, prior] = ['suffix_typo', this.sc.prior_unreal_suffix_typo];
        why = `${change} (.${q.suffix} is no real suffix: such mail bounces)`;
      } else if (rel === 'other') {
        [kind, prior] = ['suffix_swap', this.prior('suffix_swap')];
        why = `the suffix .${q.suffix} in place of .${p.suffix}`;
      } else {
        continue;
      }
      this.keep(found, pidx, this.finding(q, p, kind, prior, `with ${why}`));
    }
  }

  probeVariants(q, found, words) {
    const entry = this.variants.get(q.core);
    if (entry === undefined) return;
    for (const packed of typeof entry === 'number' ? [entry] : entry) {
      const pidx = packed >> 6;
      const p = this.protected[pidx];
      const kidx = (packed >> 1) & 31;
      let kind = this.kinds[kidx];
      let score = this.priors[kidx];
      let why;
      if (packed & 1) {
        if (kind === 'suffix_append') why = `'.${q.suffix}' appended`;
        else if (kind === 'dot_hyphen') why = `the dot before '${p.suffix}' typed as a hyphen and '.${q.suffix}' added`;
        else why = `the dot before '${p.suffix}' dropped and '.${q.suffix}' added`;
      } else if (kind === 'dot_shift' && q.core === `${p.core}${p.suffix[0]}` && p.suffix.slice(1) === q.suffix) {
        why = `the dot typed one letter late: .${q.suffix} instead of .${p.suffix}`;
        score *= this.lengthFactor(p.core);
      } else if (this.sc.dotKinds.has(kind) && p.suffix.endsWith('.' + q.suffix)) {
        const inner = p.suffix.slice(0, p.suffix.length - q.suffix.length - 1);
        const done = kind === 'dot_hyphen' ? 'typed as a hyphen' : 'dropped';
        why = `the dot between '${lastLabel(p.core)}' and '${inner}' ${done}`;
      } else {
        why = kind === 'www_prefix' ? `'www' typed before ${p.ucore} without its dot` : describeChange(q.ucore, p.ucore, p.ucore);
        if (this.sc.damped.has(kind)) score *= this.lengthFactor(p.core);
        [kind, score, why] = this.combineSuffix(q, p, kind, score, why);
        if (words) [score, why] = this.wordDamping(q.core, p.core, score, why);
      }
      this.keep(found, pidx, this.finding(q, p, kind, score, `with ${why}`));
    }
  }

  probeMapped(q, found) {
    let mapped;
    try {
      mapped = this.names.normaliseDomain(q.unicode);
    } catch (err) {
      if (err instanceof InvalidAddress) return;
      throw err;
    }
    if (mapped.ascii === q.name || !this.isProtected(mapped.ascii)) return;
    let pidx = this.byDomain.get(mapped.ascii);
    if (pidx === undefined) pidx = this.byRegistrable.get(this.suffixes.registrable(mapped.ascii) || '');
    if (pidx === undefined) return;
    const p = this.protected[pidx];
    const note = this.describe.glyphNote(q.unicode, mapped.unicode).split(`${mapped.unicode}'s own`).join(`${p.ucore}'s own`);
    this.keep(found, pidx, this.finding(q, p, 'homoglyph', this.prior('homoglyph'), `(${note})`));
  }

  probeSkeletons(q, found) {
    const hits = this.skeletonFull.get(this.u.skeleton(q.unicode)) ?? [];
    const glyphKind = isAscii(q.unicode) ? 'ascii_lookalike' : 'homoglyph';
    const prior = this.prior(glyphKind);
    // An ASCII look-alike is a letter edit, damped for short names as the variants are (core/index.py)
    const damped = this.sc.damped.has(glyphKind);
    for (const pidx of hits) {
      const p = this.protected[pidx];
      if (p.domain !== q.name) {
        const score = damped ? prior * this.lengthFactor(p.core) : prior;
        this.keep(found, pidx, this.finding(q, p, glyphKind, score, `(${this.describe.glyphNote(q.ucore, p.ucore)})`));
      }
    }
    if (hits.length || !q.core) return;
    for (const pidx of this.skeletonCore.get(this.u.skeleton(q.ucore)) ?? []) {
      const p = this.protected[pidx];
      if (found.has(pidx) || q.core === p.core) continue;
      const start = damped ? prior * this.lengthFactor(p.core) : prior;
      const [kind, score, why] = this.combineSuffix(q, p, glyphKind, start, this.describe.glyphNote(q.ucore, p.ucore));
      this.keep(found, pidx, this.finding(q, p, kind, score, `(${why})`));
    }
  }

  probeFolded(q, found) {
    const folded = this.u.fold(q.ucore);
    if (folded === null || !asciiCore(folded) || folded === q.core) return;
    const fq = { name: q.name, core: folded, suffix: q.suffix, unicode: `${folded}.${q.suffix}`, ucore: folded };
    const inner = new Map();
    for (const pidx of this.coreExact.get(folded) ?? []) {
      const p = this.protected[pidx];
      let [kind, score, why] = this.combineSuffix(fq, p, 'homoglyph', 1.0, '');
      why = removePrefix(removePrefix(why, ', and '), ', ');
      inner.set(pidx, this.finding(fq, p, kind, score, `with ${why}`));
    }
    this.probeVariants(fq, inner, false);
    if (!inner.size) this.probeFuzzy(fq, inner);
    const prior = this.prior('homoglyph');
    for (const [pidx, f] of inner) {
      const p = this.protected[pidx];
      const kind = f.kind.startsWith('homoglyph') ? f.kind : `homoglyph+${f.kind}`;
      const rest = removePrefix(f.reason, `${fq.unicode} looks like ${p.unicode} with `);
      const why = `(${this.describe.glyphNote(q.ucore, p.ucore)}; it reads as ${fq.unicode}` + (rest ? `, with ${rest})` : ')');
      const reason = `${q.unicode} looks like ${p.unicode} ${why}`;
      this.keep(found, pidx, new Finding(q.name, p.domain, kind, clip(f.score * prior), reason));
    }
  }

  probeFuzzy(q, found) {
    const qcore = q.core;
    const sc = this.sc;
    if (!(sc.fuzzy_one_min_len - 1 <= qcore.length && qcore.length <= this.maxCore + 2)) return;
    const candidates = this.fewCandidates(qcore, 'core', 'coreMask', 2) ?? new Set();
    if (candidates instanceof Set) {
      const table = this.deletes;
      eachDelete(qcore, qcore.length >= sc.fuzzy_two_min_len - 2 ? 2 : 1, (d) => {
        const hits = table.get(d);
        if (hits !== undefined) for (const pidx of hits) candidates.add(pidx);
      });
    }
    for (const pidx of candidates) {
      const p = this.protected[pidx];
      const dist = osaDistance(qcore, p.core, 2);
      if (dist === 0 || dist > 2 || (dist === 2 && p.core.length < sc.fuzzy_two_min_len)) continue;
      let prior = (dist === 1 ? sc.prior_fuzzy_one : sc.prior_fuzzy_two) * this.lengthFactor(p.core);
      let why = dist === 1 ? describeChange(q.ucore, p.ucore, p.ucore) : `two slips in ${p.ucore}`;
      let kind;
      [kind, prior, why] = this.combineSuffix(q, p, dist === 1 ? 'edit' : 'two_edits', prior, why);
      [prior, why] = this.wordDamping(qcore, p.core, prior, why);
      this.keep(found, pidx, this.finding(q, p, kind, prior, `with ${why}`));
    }
  }

  probeSkeletonFuzzy(q, found) {
    const sk = this.u.skeleton(q.ucore);
    const n = cpLen(sk);
    if (!(this.sc.fuzzy_one_min_len - 1 <= n && n <= 2 * this.maxCore + 2)) return;
    const candidates = this.fewCandidates(sk, 'core_skeleton', 'skeletonMask', 1) ?? new Set();
    if (candidates instanceof Set) {
      const table = this.skeletonDeletes;
      eachDelete(sk, 1, (d) => {
        const hits = table.get(d);
        if (hits !== undefined) for (const pidx of hits) candidates.add(pidx);
      });
    }
    const glyphKind = isAscii(q.ucore) ? 'ascii_lookalike' : 'homoglyph';
    for (const pidx of candidates) {
      const p = this.protected[pidx];
      if (osaDistance(sk, p.core_skeleton, 1) !== 1) continue;
      let prior = this.sc.prior_fuzzy_one * this.lengthFactor(p.core);
      let why = `${this.describe.glyphNote(q.ucore, p.ucore)}, and one more slip`;
      let kind;
      [kind, prior, why] = this.combineSuffix(q, p, `${glyphKind}+edit`, prior, why);
      [prior, why] = this.wordDamping(q.core, p.core, prior, why);
      this.keep(found, pidx, this.finding(q, p, kind, prior, `(${why})`));
    }
  }

  /**
   * With few protected domains, the fuzzy stages' candidates without the deletion tables: the protected
   * domains those stages may match (cores of 4+ characters) whose name is within ``edits`` characters of
   * ``text``'s length and lacks at most ``edits`` of its distinct characters (each edit brings in at most
   * one). Every domain the deletion tables would find and the distance then accepts passes this test, and
   * the distance decides for both, so the findings are the same; it only costs less than building the
   * deletions. null: use the tables (many protected domains, or characters outside [a-z0-9.-]).
   */
  fewCandidates(text, field, maskField, edits) {
    if (this.fuzzyEligible.length > FEW_PROTECTED) return null;
    const mask = charMask(text);
    if (mask === null) return null;
    const out = [];
    for (const pidx of this.fuzzyEligible) {
      const p = this.protected[pidx];
      const pm = p[maskField];
      if (pm === null || Math.abs(p[field].length - text.length) > edits) {
        if (pm === null) return null;
        continue;
      }
      if (bits(mask[0] & ~pm[0]) + bits(mask[1] & ~pm[1]) <= edits) out.push(pidx);
    }
    return out;
  }

  wordDamping(qcore, pcore, score, why) {
    const typed = lastLabel(qcore);
    if (this.wordSet === null) this.wordSet = new Set(this.wordText ? this.wordText.split(' ') : []);
    if (typed !== lastLabel(pcore) && this.wordSet.has(typed)) {
      return [score * this.sc.common_word_factor, `${why}; but '${typed}' is a common word, likely chosen on purpose`];
    }
    return [score, why];
  }
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function asciiCore(core) {
  return core !== '' && core.split('.').every((label) => LABEL.test(label));
}

function removePrefix(text, prefix) {
  return text.startsWith(prefix) ? text.slice(prefix.length) : text;
}
