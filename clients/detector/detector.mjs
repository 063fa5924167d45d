// typoguard's detector for mail clients: a recipient in, the verdict `typoguard check --format json` gives,
// decided locally from a bundle written by `typoguard export --format client-bundle` (docs/clients.md).
//
//   import { loadBundle, check } from './detector.mjs';
//   loadBundle(await (await fetch('bundle.json')).text());
//   check('bob@army.ml')  // {recipient, domain, action: 'reject', intended: 'army.mil', kind, score, reason}
//
// Dependency-free ES module (Node 18+, browsers, extensions); nothing leaves the process. Mirrors
// src/typoguard/core/detector.py and policy.py; the look-up is lookup.mjs, names names.mjs.

import { Describer } from './describe.mjs';
import { LookalikeIndex, Finding } from './lookup.mjs';
import { MAX_LOCAL_OCTETS, NameRules } from './names.mjs';
import { sha256Hex } from './sha256.mjs';
import { SuffixRules } from './suffixes.mjs';
import { InvalidAddress, UnicodeData, isSpace, pyRepr } from './unicode.mjs';

export const FORMAT = 'typoguard-client-bundle';
export const SCHEMA = 1; // the bundle schema this detector reads (docs/clients.md, "Versioning")
export const ACTIONS = Object.freeze(['allow', 'warn', 'hold', 'reject', 'invalid']);

export class BundleError extends Error {}

const PLAIN_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const AS_TYPED = '\u0000'; // cache-key prefix of names judged as typed (core/detector.py _AS_TYPED)
const CACHE_LIMIT = 200000; // entries; the server bounds its cache by bytes (about as many typical domains)

/** What is decided about one domain (core/verdict.py Assessment), shared by the recipients at it. */
class Assessment {
  constructor(domain, action, finding, reason, error = null) {
    this.domain = domain;
    this.action = action;
    this.finding = finding;
    this.reason = reason;
    this.error = error;
    this.shown = null; // the fields of check()'s result, made once
  }
}

/** Python's round(x, 4) (half to even on exact ties), for the score as the server prints it. */
export function round4(x) {
  const fixed = x.toFixed(20);
  const dot = fixed.indexOf('.');
  const rest = fixed.slice(dot + 5);
  if (/^50*$/.test(rest)) {
    const down = Number(fixed.slice(0, dot + 5));
    const last = Number(fixed[dot + 4]);
    return last % 2 === 0 ? down : Number((down + 0.0001).toFixed(4));
  }
  return Number(x.toFixed(4));
}

class Policy {
  constructor(p, trusted, legitimate, suffixes) {
    this.rejectAt = p.reject_at;
    this.holdAt = p.hold_at;
    this.warnAt = p.warn_at;
    this.trusted = new Set(trusted);
    this.legitimate = new Set(legitimate);
    this.suffixes = suffixes;
  }

  actionFor(score) {
    if (score >= this.rejectAt) return 'reject';
    if (score >= this.holdAt) return 'hold';
    if (score >= this.warnAt) return 'warn';
    return 'allow';
  }

  listed(domain, set) {
    if (set.has(domain)) return true;
    const reg = this.suffixes.registrable(domain);
    if (reg !== null && set.has(reg)) return true;
    for (let at = domain.indexOf('.'); at >= 0; at = domain.indexOf('.', at + 1)) {
      if (set.has(domain.slice(at + 1))) return true;
    }
    return false;
  }

  decide(domain, findings, protectedDomain, display) {
    const shown = display || domain;
    if (protectedDomain) return new Assessment(domain, 'allow', null, `${shown} is a protected domain`);
    if (!findings.length) return new Assessment(domain, 'allow', null, `${shown} does not look like a protected domain`);
    const best = findings[0];
    if (this.listed(domain, this.trusted)) {
      return new Assessment(domain, 'allow', best, `${shown} is a trusted domain (configured); ${best.reason}`);
    }
    if (this.listed(domain, this.legitimate)) {
      return new Assessment(domain, 'allow', best, `${shown} is a well-known legitimate mail domain; ${best.reason}`);
    }
    let action = this.actionFor(best.score);
    if (best.kind.includes('suffix_swap') && (action === 'reject' || action === 'hold')) action = 'warn';
    return new Assessment(domain, action, best, best.reason);
  }
}

function invalid(error) {
  return new Assessment(null, 'invalid', null, `invalid recipient: ${error}`, error);
}

/** The detector of one bundle. */
export class Detector {
  /** @param {object} envelope a parsed bundle file */
  constructor(envelope) {
    if (!envelope || typeof envelope !== 'object' || envelope.format !== FORMAT) {
      throw new BundleError(`not a ${FORMAT} file`);
    }
    if (envelope.schema !== SCHEMA) {
      throw new BundleError(
        `bundle schema ${JSON.stringify(envelope.schema)}, this detector reads schema ${SCHEMA}: ` +
          'update the detector, or export the bundle with a typoguard that writes this schema',
      );
    }
    const c = envelope.content;
    this.sha256 = envelope.sha256;
    this.content = c;
    try {
      this.u = new UnicodeData(c.unicode);
      this.suffixes = new SuffixRules(c.suffixes);
      this.names = new NameRules(this.u);
      this.describe = new Describer(this.u);
      this.index = new LookalikeIndex(c, this.suffixes, this.u, this.describe, this.names);
      this.policy = new Policy(c.policy, c.trusted, c.legitimate, this.suffixes);
      this.mixedScriptScore = c.scoring.mixed_script_score;
    } catch (err) {
      if (err instanceof TypeError) throw new BundleError(`damaged bundle: ${err.message}`);
      throw err;
    }
    this.cache = new Map();
  }

  /** What the bundle protects and how it decides (for a client's settings page). */
  get info() {
    const c = this.content;
    return {
      sha256: this.sha256,
      typoguard: c.typoguard,
      protected: this.index.protected.map((p) => p.domain),
      trusted: [...this.policy.trusted],
      policy: { ...c.policy },
      replies: { ...c.replies },
    };
  }

  /** The verdict for one recipient (an address or a bare domain): the JSON object of
   * `typoguard check --format json`. Never throws for bad input. */
  check(recipient) {
    recipient = String(recipient);
    const a = this.assess(recipient);
    let shown = a.shown;
    if (shown === null) {
      const f = a.finding;
      shown = {
        domain: a.domain,
        action: a.action,
        intended: f ? f.intended : null,
        kind: f ? f.kind : null,
        score: f ? round4(f.score) : 0.0,
        reason: this.describe.readableReason(a.reason, a.domain),
      };
      if (a.error !== null) shown.error = a.error;
      a.shown = shown;
    }
    const out = { recipient, ...shown };
    return out;
  }

  /** The assessment for one recipient (cached per domain, as on the server). */
  assess(recipient) {
    const at = recipient.lastIndexOf('@');
    if (
      at > 0 &&
      at <= MAX_LOCAL_OCTETS &&
      recipient[recipient.length - 1] !== ']' &&
      !isSpace(recipient[recipient.length - 1]) &&
      PLAIN_LOCAL.test(recipient.slice(0, at))
    ) {
      const key = recipient.slice(at + 1);
      const found = this.cache.get(key);
      return found !== undefined ? found : this.assessText(key);
    }
    return this.assessSlow(recipient);
  }

  remember(key, value) {
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, value);
  }

  assessSlow(recipient) {
    let parsed;
    try {
      parsed = this.names.parseRecipient(recipient);
    } catch (err) {
      if (err instanceof InvalidAddress) return invalid(err.message);
      throw err;
    }
    if (parsed.domain === null) {
      return new Assessment(parsed.literal, 'allow', null, `${parsed.literal} is an address literal, not a domain name`);
    }
    return this.assessDomain(parsed.domain);
  }

  assessText(text) {
    let domain;
    try {
      domain = this.names.normaliseDomain(text);
    } catch (err) {
      if (err instanceof InvalidAddress) return invalid(err.message); // not cached: refusing again is cheap
      throw err;
    }
    const result = this.assessDomain(domain);
    this.remember(text, result);
    return result;
  }

  assessDomain(domain) {
    let result = this.cache.get(domain.ascii);
    if (result === undefined) {
      result = this.assessOne(domain);
      this.remember(domain.ascii, result);
    }
    const typed = domain.asTyped;
    if (typed !== null && result.action === 'allow' && result.finding === null) {
      // Typed with characters UTS #46 maps away (gⅿail.com): what was typed is a name of its own.
      // Its own key, as on the server: the same A-label typed as such may be judged differently.
      const key = AS_TYPED + typed.ascii;
      let asTyped = this.cache.get(key);
      if (asTyped === undefined) {
        asTyped = this.assessOne(typed);
        this.remember(key, asTyped);
      }
      if (asTyped.action !== 'allow') return asTyped;
    }
    return result;
  }

  assessOne(domain) {
    const name = domain.ascii;
    if (this.index.isProtected(name)) return this.policy.decide(name, [], true, domain.unicode);
    let findings = this.index.lookup(domain);
    if (!findings.length && domain.isIdn) {
      const odd = this.names.mixedScriptLabels(domain);
      if (odd.length) {
        findings = [
          new Finding(name, null, 'mixed_script', this.mixedScriptScore,
            `${domain.unicode} mixes scripts in ${pyRepr(odd[0])}, as spoofed names do`),
        ];
      }
    }
    return this.policy.decide(name, findings, false, domain.unicode);
  }

  clearCache() {
    this.cache.clear();
  }
}

/** The bytes of a bundle file's ``content`` member as written: what its ``sha256`` covers. */
function contentBytes(text) {
  const key = '"content":';
  const start = text.indexOf(key);
  const end = text.lastIndexOf('}');
  if (start < 0 || end < start) throw new BundleError('not a bundle file: no content');
  return new TextEncoder().encode(text.slice(start + key.length, end));
}

let current = null;

/**
 * Load a bundle and make it the one ``check()`` uses; returns its ``Detector``.
 * @param {string|object} json the bundle file's text (verified against its sha256), or the parsed object
 * @param {{verify?: boolean}} [options] verify: check the sha256 of the text (default true)
 */
export function loadBundle(json, { verify = true } = {}) {
  let envelope = json;
  if (typeof json === 'string') {
    try {
      envelope = JSON.parse(json);
    } catch (err) {
      throw new BundleError(`not a bundle file: ${err.message}`);
    }
    if (verify && envelope && envelope.format === FORMAT && envelope.schema === SCHEMA) {
      if (sha256Hex(contentBytes(json)) !== envelope.sha256) {
        throw new BundleError('bundle content does not match its sha256 (modified or re-formatted): export it again');
      }
    }
  }
  current = new Detector(envelope);
  return current;
}

/** The verdict for ``recipient`` under the bundle loaded last. */
export function check(recipient) {
  if (current === null) throw new BundleError('no bundle loaded: call loadBundle() first');
  return current.check(recipient);
}
