// The background page: Thunderbird's messenger, the window's fetch and timers, and the bundle packaged
// with the add-on (bundle.json, put there by scripts/build-clients.sh) handed to addon.mjs.
import { loadBundle } from './detector/detector.mjs';
import { start } from './addon.mjs';

const api = globalThis.messenger;

start(api, {
  loadBundle,
  readBundle: async () => {
    const response = await fetch(api.runtime.getURL('bundle.json'));
    if (!response.ok) throw new Error(`bundle.json: ${response.status}`);
    return response.text();
  },
  fetch: (...args) => globalThis.fetch(...args),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (timer) => globalThis.clearTimeout(timer),
  log: (text) => console.warn(text),
});
