// The background's bundle loading under the browser's storage API stubbed at the boundary (Chromium's
// managed storage is set only by enterprise policy files, which a test cannot write): the packaged bundle,
// the organisation's bundleUrl (fetched for real from a loopback HTTP server), a pinned sha256, a failed
// refresh falling back to the stored copy, allowExtraDomains=false, a bundle in audit mode, and messages
// from elsewhere ignored.
//   TG_WEBMAIL_BUILD=<a build.mjs output dir> TG_WEBMAIL_AUDIT_BUNDLE=<an audit-mode bundle> \
//     node --test background.test.mjs
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';

const DIR = process.env.TG_WEBMAIL_BUILD;
assert.ok(DIR, 'TG_WEBMAIL_BUILD: the directory build.mjs wrote');
const BUNDLE = readFileSync(join(DIR, 'bundle.json'), 'utf8');
const SHA = JSON.parse(BUNDLE).sha256;
const AUDIT = process.env.TG_WEBMAIL_AUDIT_BUNDLE ? readFileSync(process.env.TG_WEBMAIL_AUDIT_BUNDLE, 'utf8') : null;

let server;
let base;
let bundleStatus = 200;
const requests = [];
before(async () => {
  server = createServer((req, res) => {
    requests.push(req.url);
    if (req.url.startsWith('/ext/')) {
      res.end(readFileSync(join(DIR, req.url.slice(5))));
    } else if (req.url === '/org/audit.json' && AUDIT !== null) {
      res.writeHead(200, { 'access-control-allow-origin': '*' });
      res.end(AUDIT);
    } else if (req.url === '/org/bundle.json') {
      res.writeHead(bundleStatus, { 'access-control-allow-origin': '*' });
      res.end(bundleStatus === 200 ? BUNDLE : 'down');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

let loads = 0;
/** A fresh background.mjs under a stubbed `chrome`; returns ask(message, senderId) and the local storage. */
async function background({ managed = {}, local = {} } = {}) {
  let listener = null;
  const store = { ...local };
  globalThis.chrome = {
    runtime: {
      id: 'typoguard-test',
      getURL: (path) => `${base}/ext/${path}`,
      onMessage: { addListener: (fn) => (listener = fn) },
    },
    storage: {
      managed: { get: async () => managed },
      local: {
        get: async (key) => (key in store ? { [key]: store[key] } : {}),
        set: async (items) => Object.assign(store, items),
      },
      onChanged: { addListener: () => {} },
    },
  };
  await import(`${pathToFileURL(join(DIR, 'background.mjs')).href}?load=${++loads}`);
  const ask = (message, id = 'typoguard-test') =>
    new Promise((resolve) => {
      const pending = listener(message, { id }, resolve);
      if (pending !== true) resolve('ignored');
    });
  return { ask, store };
}

test('the packaged bundle, when no policy names one', async () => {
  const { ask } = await background();
  const info = await ask({ type: 'typoguard-info' });
  assert.equal(info.sha256, SHA);
  assert.equal(info.source, 'packaged with the extension');
  const { results } = await ask({ type: 'typoguard-check', recipients: ['bob@army.ml', 'bob@army.mil'] });
  assert.deepEqual(results.map((r) => [r.action, r.intended]), [['reject', 'army.mil'], ['allow', null]]);
});

test("the organisation's bundleUrl: fetched once, kept, and used again without fetching", async () => {
  const url = `${base}/org/bundle.json`;
  const first = await background({ managed: { bundleUrl: url } });
  assert.equal((await first.ask({ type: 'typoguard-info' })).source, url);
  assert.equal(first.store.managedCopy.url, url);
  const fetched = requests.filter((r) => r === '/org/bundle.json').length;
  const again = await background({ managed: { bundleUrl: url }, local: first.store });
  assert.match((await again.ask({ type: 'typoguard-info' })).source, /stored copy/);
  assert.equal(requests.filter((r) => r === '/org/bundle.json').length, fetched);
});

test('a failed refresh keeps the last good copy, and says so', async () => {
  const url = `${base}/org/bundle.json`;
  const stale = { managedCopy: { url, text: BUNDLE, fetched: 0 } };
  bundleStatus = 503;
  try {
    const { ask } = await background({ managed: { bundleUrl: url }, local: stale });
    const info = await ask({ type: 'typoguard-info' });
    assert.equal(info.sha256, SHA);
    assert.match(info.source, /refresh failed: .*HTTP 503/);
    const none = await background({ managed: { bundleUrl: url } });
    assert.match((await none.ask({ type: 'typoguard-info' })).error, /HTTP 503/);
  } finally {
    bundleStatus = 200;
  }
});

test('a bundle that is not the pinned one is refused, and nothing is checked', async () => {
  const { ask } = await background({ managed: { bundleSha256: '0'.repeat(64) } });
  const info = await ask({ type: 'typoguard-info' });
  assert.match(info.error, /not the one the organisation pinned/);
  assert.match((await ask({ type: 'typoguard-check', recipients: ['bob@army.ml'] })).error, /pinned/);
  const pinned = await background({ managed: { bundleSha256: SHA.toUpperCase() } });
  assert.equal((await pinned.ask({ type: 'typoguard-info' })).sha256, SHA);
});

test('extra domains count unless the organisation disallows them', async () => {
  const local = { extraDomains: ['acme-corp.com'] };
  const mine = await background({ local });
  const [v] = (await mine.ask({ type: 'typoguard-check', recipients: ['joe@acme-crop.com'] })).results;
  assert.deepEqual([v.action, v.intended, v.kind], ['warn', 'acme-corp.com', 'extra_edit']);
  const org = await background({ local, managed: { allowExtraDomains: false } });
  const [w] = (await org.ask({ type: 'typoguard-check', recipients: ['joe@acme-crop.com'] })).results;
  assert.equal(w.action, 'allow');
});

test('messages from anything but this extension are ignored', async () => {
  const { ask } = await background();
  assert.equal(await ask({ type: 'typoguard-check', recipients: ['bob@army.ml'] }, 'another-extension'), 'ignored');
  assert.equal(await ask('typoguard-info'), 'ignored');
});

test('in audit mode the bundle lets the client only warn', { skip: AUDIT === null && 'TG_WEBMAIL_AUDIT_BUNDLE not set' }, async () => {
  const { ask } = await background({ managed: { bundleUrl: `${base}/org/audit.json` } });
  const [v] = (await ask({ type: 'typoguard-check', recipients: ['bob@army.ml'] })).results;
  assert.deepEqual([v.action, v.intended, v.audit], ['warn', 'army.mil', true]);
});
