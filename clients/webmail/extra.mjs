// Extra protected domains a person adds on the options page, decided locally.
//
// The bundle's look-alike index is compiled by typoguard's typo models on the server (ADR 0021); the browser
// has no models, so an extra domain gets a simpler, documented check (docs/clients.md, "Webmail extension"):
// a recipient domain is flagged `warn` when it is not the extra domain (or below it) and
//   - it is within 1 edit of it (2 edits when the extra domain has 8 characters or more), counting an
//     insertion, a deletion, a substitution or a swap of two neighbouring characters, or
//   - it has the same name with another suffix (army.mil -> army.ml is covered by the edit; army.mil ->
//     army.com is this rule): the labels before the last one are equal.
// Pure: no browser API.

/** A domain as typed on the options page, normalised as a host name (lower case, IDN as A-labels, no
 * trailing dot; an address is taken for its domain); null when it is not a domain name. */
export function normaliseExtra(text) {
  let d = String(text).trim();
  const at = d.lastIndexOf('@');
  if (at >= 0) d = d.slice(at + 1);
  d = d.replace(/\.+$/, '');
  if (!d || /[/:?#\s\\]/.test(d)) return null;
  try {
    d = new URL(`http://${d}/`).hostname;
  } catch {
    return null;
  }
  return /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(d) ? d : null;
}

/** Damerau-Levenshtein distance (optimal string alignment), stopping early above `limit`. */
export function editDistance(a, b, limit = 2) {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev2 = null;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
      if (prev2 && i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2] + 1);
      row.push(v);
      if (v < best) best = v;
    }
    if (best > limit) return limit + 1;
    prev2 = prev;
    prev = row;
  }
  return prev[b.length];
}

/** The verdict for `domain` (an A-label host, lower case) against the extra domains; null when none applies. */
export function checkExtra(domain, extras) {
  if (!domain) return null;
  for (const e of extras) {
    if (domain === e || domain.endsWith(`.${e}`)) return { protectedHere: true };
  }
  for (const e of extras) {
    const limit = e.length >= 8 ? 2 : 1;
    const d = editDistance(domain, e, limit);
    if (d <= limit) {
      return {
        action: 'warn',
        intended: e,
        kind: 'extra_edit',
        score: 0.0,
        reason: `${domain} is ${d} edit${d === 1 ? '' : 's'} from ${e} (a domain protected in this browser)`,
      };
    }
    const stem = (x) => x.slice(0, x.lastIndexOf('.'));
    if (stem(domain) === stem(e)) {
      return {
        action: 'warn',
        intended: e,
        kind: 'extra_suffix',
        score: 0.0,
        reason: `${domain} is ${e} with another suffix (a domain protected in this browser)`,
      };
    }
  }
  return null;
}

/** Combine the bundle's verdict with the extra domains': the extra check only speaks when the bundle
 * allows a domain with no finding that is not one of its protected or trusted domains (`known`). */
export function combine(verdict, extras, known) {
  if (verdict.action !== 'allow' || !verdict.domain || extras.length === 0) return verdict;
  if (verdict.intended !== null || known.has(verdict.domain)) return verdict; // the bundle knows it
  const extra = checkExtra(verdict.domain, extras);
  if (extra === null || extra.protectedHere) return verdict;
  return { ...verdict, ...extra };
}
