// The extension's background (a service worker in Chromium, an event page in Firefox): holds the detector
// and the bundle, answers the content scripts' `check` messages. Recipients arrive by extension messaging
// and never leave the browser: the only network request this extension makes is fetching the bundle from
// the URL an organisation sets in managed storage (bundleUrl), and that request carries no recipient.

import { BundleError, loadBundle } from './detector/detector.mjs';
import { combine, normaliseExtra } from './extra.mjs';

const api = globalThis.browser ?? globalThis.chrome;
const FLAGGED = new Set(['warn', 'hold', 'reject']);
const DEFAULT_REFRESH_HOURS = 6;

let state = null; // Promise<{detector, source, known, audit} | {error}>

async function managedSettings() {
  try {
    return (await api.storage.managed.get(null)) || {};
  } catch {
    return {}; // no policy, or a browser without managed storage
  }
}

async function fetchText(url) {
  const response = await fetch(url, { cache: 'no-store', credentials: 'omit', redirect: 'error' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

/** The managed bundle: fetched when the stored copy is older than refreshHours, else the stored copy; a
 * failed fetch falls back to the stored copy of the same URL. */
async function managedBundle(settings) {
  const url = settings.bundleUrl;
  const hours = Number.isFinite(settings.refreshHours) && settings.refreshHours > 0 ? settings.refreshHours : DEFAULT_REFRESH_HOURS;
  const { managedCopy } = await api.storage.local.get('managedCopy');
  const fresh = managedCopy && managedCopy.url === url && Date.now() - managedCopy.fetched < hours * 3600e3;
  if (fresh) return { text: managedCopy.text, source: `${url} (stored copy)` };
  try {
    const text = await fetchText(url);
    loadBundle(text); // verified before it replaces a good copy
    await api.storage.local.set({ managedCopy: { url, text, fetched: Date.now() } });
    return { text, source: url };
  } catch (err) {
    if (managedCopy && managedCopy.url === url) return { text: managedCopy.text, source: `${url} (stored copy; refresh failed: ${err.message})` };
    throw err;
  }
}

async function load() {
  const settings = await managedSettings();
  let text;
  let source;
  if (typeof settings.bundleUrl === 'string' && settings.bundleUrl) {
    ({ text, source } = await managedBundle(settings));
  } else {
    text = await fetchText(api.runtime.getURL('bundle.json'));
    source = 'packaged with the extension';
  }
  const detector = loadBundle(text);
  const pinned = typeof settings.bundleSha256 === 'string' ? settings.bundleSha256.trim().toLowerCase() : '';
  if (pinned && pinned !== detector.sha256) {
    throw new BundleError(`bundle ${detector.sha256} is not the one the organisation pinned (${pinned})`);
  }
  const info = detector.info;
  const known = new Set([...info.protected, ...info.trusted]);
  return { detector, source, known, audit: info.policy.mode === 'audit' };
}

function loaded() {
  if (state === null) {
    state = load().catch((err) => {
      console.error('typoguard: no bundle:', err);
      return { error: String(err.message || err) };
    });
  }
  return state;
}

/** The extra protected domains, read afresh for each question: a page asks again as soon as the options
 * page saves them, possibly before this background would hear of the change. */
async function loadExtras() {
  const settings = await managedSettings();
  if (settings.allowExtraDomains === false) return [];
  const stored = await api.storage.local.get('extraDomains');
  return (stored.extraDomains || []).map(normaliseExtra).filter(Boolean);
}

/** The verdict for one recipient, as `typoguard check` gives it, plus the extra domains' check; in audit
 * mode the bundle's policy lets a client only warn. */
function verdict(s, extras, recipient) {
  let v = combine(s.detector.check(recipient), extras, s.known);
  if (s.audit && FLAGGED.has(v.action) && v.action !== 'warn') v = { ...v, action: 'warn', audit: true };
  return v;
}

async function answer(message) {
  const s = await loaded();
  if (s.error) return { error: s.error };
  const extras = await loadExtras();
  if (message.type === 'typoguard-info') {
    return { ...s.detector.info, source: s.source, extras };
  }
  if (message.type === 'typoguard-check' && Array.isArray(message.recipients)) {
    const results = message.recipients.slice(0, 1000).map((r) => verdict(s, extras, String(r)));
    return { sha256: s.detector.sha256, results };
  }
  return { error: 'unknown message' };
}

api.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (sender.id !== api.runtime.id || !message || typeof message.type !== 'string') return false;
  answer(message).then(sendResponse, (err) => sendResponse({ error: String(err.message || err) }));
  return true;
});

api.storage.onChanged.addListener((changes, area) => {
  if (area === 'managed') state = null; // a new policy: load the bundle again at the next question
});
