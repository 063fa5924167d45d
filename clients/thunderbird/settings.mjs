// The organisation's settings (storage.managed, set through policies.json), checked against
// managed_schema.json's rules: Thunderbird hands the add-on whatever the policy file holds, unvalidated.
// A bad value is never guessed at: it is dropped, named in `problems`, and the add-on then checks locally.

export const DEFAULT_TIMEOUT_MS = 2000;
const MIN_TIMEOUT_MS = 100;
const MAX_TIMEOUT_MS = 10000;
const KNOWN = new Set(['serverUrl', 'token', 'timeoutMs']);
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * `raw` (what storage.managed.get() gave) -> {server: {checkUrl, token, timeoutMs} | null, timeoutMs, problems}.
 * `server` is set only when serverUrl and token are both present and valid: only then may anything about a
 * recipient leave the computer.
 */
export function readSettings(raw) {
  const problems = [];
  const settings = raw && typeof raw === 'object' ? raw : {};
  for (const key of Object.keys(settings)) {
    if (!KNOWN.has(key)) problems.push(`unknown setting ${key} (ignored)`);
  }
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (settings.timeoutMs !== undefined) {
    const t = settings.timeoutMs;
    if (Number.isInteger(t) && t >= MIN_TIMEOUT_MS && t <= MAX_TIMEOUT_MS) timeoutMs = t;
    else problems.push(`timeoutMs must be a whole number from ${MIN_TIMEOUT_MS} to ${MAX_TIMEOUT_MS}, not ${JSON.stringify(t)} (using ${DEFAULT_TIMEOUT_MS})`);
  }
  let server = null;
  const url = settings.serverUrl ?? '';
  const token = settings.token ?? '';
  if (url !== '' || token !== '') {
    const checkUrl = checkUrlOf(url, problems);
    if (typeof token !== 'string' || token === '' || /\s/.test(token)) {
      problems.push('token must be a typoguard check token (tg_...) when serverUrl is set: checking locally');
    } else if (checkUrl !== null) {
      server = { checkUrl, token, timeoutMs };
    }
  }
  return { server, timeoutMs, problems };
}

function checkUrlOf(url, problems) {
  if (typeof url !== 'string' || url === '') {
    problems.push('serverUrl is missing while a token is set: checking locally');
    return null;
  }
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    problems.push(`serverUrl ${JSON.stringify(url)} is not a URL: checking locally`);
    return null;
  }
  const plainLoopback = parsed.protocol === 'http:' && LOOPBACK.has(parsed.hostname);
  if (parsed.protocol !== 'https:' && !plainLoopback) {
    // The token and the recipients would cross the network in clear text.
    problems.push(`serverUrl must be https:// (http:// only on loopback), not ${JSON.stringify(url)}: checking locally`);
    return null;
  }
  if (parsed.username || parsed.password || parsed.search || parsed.hash) {
    problems.push(`serverUrl must be a plain base URL without credentials, query or fragment: checking locally`);
    return null;
  }
  const base = parsed.href.endsWith('/') ? parsed.href : `${parsed.href}/`;
  return new URL('v1/check', base).href;
}
