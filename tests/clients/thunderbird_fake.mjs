// Runs the packaged Thunderbird add-on's logic (ADDON_DIR/addon.mjs with its detector/ and bundle.json) in
// Node against a fake `messenger`: Thunderbird's APIs are stubbed at the boundary, everything else (the
// detector, the bundle, fetch to a real typoguard http) is real. Used by test_thunderbird_addon.py.
//
//   node thunderbird_fake.mjs ADDON_DIR < scenario.json  ->  one JSON object (what happened) on stdout
//
// scenario: {managed: object | null, details: {from, to, cc, bcc}, contacts: {id: ContactNode},
//            mailingLists: {id: {name, members}}, user: [step...], windowCreateFails: bool}
// A step is what the person does in the review window: {"decide": decision} or "close".
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const addonDir = process.argv[2];
const scenario = JSON.parse(readFileSync(0, 'utf8'));
const { start } = await import(pathToFileURL(join(addonDir, 'addon.mjs')).href);
const { loadBundle } = await import(pathToFileURL(join(addonDir, 'detector', 'detector.mjs')).href);

const seen = { reviews: [], windows: [], removedWindows: [], setComposeDetails: [], fetches: [], logs: [], answers: [] };

function event() {
  const listeners = [];
  return { addListener: (fn) => listeners.push(fn), listeners };
}

const onMessage = event();
const onRemoved = event();
const onBeforeSend = event();
let nextWindow = 100;

const messenger = {
  runtime: {
    id: 'thunderbird-addon@typoguard',
    getURL: (path) => `moz-extension://fake-uuid/${path}`,
    onMessage,
  },
  compose: {
    onBeforeSend,
    getComposeDetails: async () => scenario.details,
    setComposeDetails: async (tabId, details) => { seen.setComposeDetails.push({ tabId, details }); },
  },
  storage: {
    managed: {
      get: async () => {
        if (scenario.managed == null) throw new Error('Managed storage manifest not found');
        return structuredClone(scenario.managed);
      },
    },
  },
  windows: {
    create: async (opts) => {
      if (scenario.windowCreateFails) throw new Error('no window today');
      const id = nextWindow++;
      seen.windows.push({ id, ...opts });
      setImmediate(() => person(opts.url, id));
      return { id };
    },
    remove: async (id) => { seen.removedWindows.push(id); },
    onRemoved,
  },
  contacts: { get: async (id) => scenario.contacts?.[id] ?? null },
  mailingLists: {
    get: async (id) => ({ id, name: scenario.mailingLists?.[id]?.name }),
    listMembers: async (id) => scenario.mailingLists?.[id]?.members ?? [],
  },
};

// What review.html does: ask the background page for the review, then send decisions (or close).
async function ask(message) {
  const fromReviewPage = { id: messenger.runtime.id, url: 'moz-extension://fake-uuid/review.html' };
  for (const fn of onMessage.listeners) {
    const answer = fn(message, fromReviewPage);
    if (answer !== undefined) return answer;
  }
  return undefined;
}

async function person(url, windowId) {
  const id = new URL(url).searchParams.get('id');
  seen.reviews.push(await ask({ type: 'typoguard:review', id }));
  for (const step of scenario.user ?? []) {
    if (step === 'close') {
      for (const fn of onRemoved.listeners) fn(windowId);
    } else {
      seen.answers.push(await ask({ type: 'typoguard:decide', id, decision: step.decide }));
    }
  }
}

start(messenger, {
  loadBundle,
  readBundle: async () => readFileSync(join(addonDir, 'bundle.json'), 'utf8'),
  fetch: (url, init) => { seen.fetches.push(String(url)); return globalThis.fetch(url, init); },
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (timer) => globalThis.clearTimeout(timer),
  log: (text) => seen.logs.push(text),
});

const started = performance.now();
const timeout = setTimeout(() => {
  process.stdout.write(JSON.stringify({ ...seen, result: 'still waiting after 20 s' }));
  process.exit(3);
}, 20000);
const result = await onBeforeSend.listeners[0]({ id: 7, windowId: 70, type: 'messageCompose' }, scenario.details);
clearTimeout(timeout);
seen.elapsedMs = performance.now() - started;
seen.status = await ask({ type: 'typoguard:status' });
process.stdout.write(JSON.stringify({ ...seen, result }));
