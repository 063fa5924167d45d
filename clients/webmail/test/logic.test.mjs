// Unit tests of the extension's pure logic (node --test clients/webmail/test/): recipient parsing and
// rewriting (recipients.js, a classic script loaded as the browser loads it) and the extra protected
// domains' check (extra.mjs). Run by tests/clients/test_webmail_logic.py.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import vm from 'node:vm';

import { checkExtra, combine, editDistance, normaliseExtra } from '../extra.mjs';

const context = vm.createContext({});
vm.runInContext(readFileSync(new URL('../recipients.js', import.meta.url), 'utf8'), context);
const R = context.typoguardRecipients;
// Array.from: the lists come from the script's own realm, whose Array is not this one.
const addresses = (list) => Array.from(R.parseList(list), (r) => r.address);

test('a list as people type it', () => {
  assert.deepEqual(addresses('Name <a@b.org>, c@d.org'), ['a@b.org', 'c@d.org']);
  assert.deepEqual(addresses('"Doe, Jane" <jane@x.org>; bob@army.ml\nc@d.org'), ['jane@x.org', 'bob@army.ml', 'c@d.org']);
  assert.deepEqual(addresses('  <a@b.org> , , mailto:m@x.org,'), ['a@b.org', 'm@x.org']);
  assert.deepEqual(addresses('bob@army.ml (Bob, at work), "a\\"b" <q@x.org>'), ['bob@army.ml', 'q@x.org']);
  assert.deepEqual(addresses('Bob <bob@army.ml>, '), ['bob@army.ml']);
  assert.deepEqual(addresses(''), []);
  assert.deepEqual(addresses('no address here'), ['no address here']); // the detector calls it invalid
});

test('names and offsets', () => {
  const [r] = R.parseList('  "Doe, Jane" < jane@x.org >');
  assert.equal(r.name, 'Doe, Jane');
  assert.equal(r.address, 'jane@x.org');
  assert.equal('  "Doe, Jane" < jane@x.org >'.slice(r.start, r.end), 'jane@x.org');
});

test('replacing one address keeps the rest as typed', () => {
  assert.equal(R.replaceAddress('Bob <bob@army.ml>, c@d.org', 'bob@army.ml', 'bob@army.mil'), 'Bob <bob@army.mil>, c@d.org');
  assert.equal(R.replaceAddress('c@d.org, BOB@Army.ML', 'bob@army.ml', 'BOB@army.mil'), 'c@d.org, BOB@army.mil');
  // Only the address, never a name that happens to contain it.
  assert.equal(
    R.replaceAddress('"bob@army.ml" <bob@army.ml>', 'bob@army.ml', 'bob@army.mil'),
    '"bob@army.ml" <bob@army.mil>',
  );
  assert.equal(R.replaceAddress('c@d.org', 'bob@army.ml', 'bob@army.mil'), null);
});

test('the corrected address keeps the local part', () => {
  assert.equal(R.corrected('bob@army.ml', 'army.mil'), 'bob@army.mil');
  assert.equal(R.corrected('"a@b"@army.ml', 'army.mil'), '"a@b"@army.mil');
});

test('an address inside a chip text or attribute', () => {
  assert.equal(R.findAddress('Bob Jones <bob@army.ml>'), 'bob@army.ml');
  assert.equal(R.findAddress('mailto:bob@army.ml.'), 'bob@army.ml');
  assert.equal(R.findAddress('Remove Bob'), '');
  assert.equal(R.findAddress(null), '');
});

test('extra domains: normalised as host names', () => {
  assert.equal(normaliseExtra(' Acme-Corp.COM. '), 'acme-corp.com');
  assert.equal(normaliseExtra('someone@acme.org'), 'acme.org');
  assert.equal(normaliseExtra('bücher.de'), 'xn--bcher-kva.de');
  assert.equal(normaliseExtra('not a domain'), null);
  assert.equal(normaliseExtra('https://acme.org/'), null);
  assert.equal(normaliseExtra('localhost'), null);
});

test('extra domains: edits, swaps and suffixes', () => {
  assert.equal(editDistance('army.mil', 'army.ml'), 1);
  assert.equal(editDistance('acme-corp.com', 'acme-crop.com'), 1); // a swap is one edit
  assert.equal(editDistance('abc.org', 'xyz.net', 2), 3); // stops above the limit
  const extras = ['acme-corp.com', 'ibm.de'];
  assert.equal(checkExtra('acme-crop.com', extras).intended, 'acme-corp.com');
  assert.equal(checkExtra('acme-corp.co', extras).action, 'warn');
  assert.equal(checkExtra('acne-crop.com', extras).kind, 'extra_edit'); // 2 edits, long name
  assert.equal(checkExtra('ibn.de', extras).kind, 'extra_edit');
  assert.equal(checkExtra('ibn.dk', extras), null); // 2 edits on a short name: not flagged
  assert.equal(checkExtra('ibm.com', extras).kind, 'extra_suffix');
  assert.deepEqual(checkExtra('mail.acme-corp.com', extras), { protectedHere: true });
  assert.equal(checkExtra('example.org', extras), null);
});

test('extra domains only speak when the bundle allows a domain it knows nothing about', () => {
  const allow = { recipient: 'j@acme-crop.com', domain: 'acme-crop.com', action: 'allow', intended: null, kind: null, score: 0, reason: 'x' };
  const known = new Set(['army.mil']);
  assert.equal(combine(allow, ['acme-corp.com'], known).action, 'warn');
  assert.equal(combine(allow, [], known), allow);
  const reject = { ...allow, domain: 'army.ml', action: 'reject', intended: 'army.mil' };
  assert.equal(combine(reject, ['army.mi'], known), reject); // the bundle's verdict stands
  const trusted = { ...allow, domain: 'acme-crop.com' };
  assert.equal(combine(trusted, ['acme-corp.com'], new Set(['acme-crop.com'])), trusted);
});
