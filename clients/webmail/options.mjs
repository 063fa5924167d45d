// The options page: which bundle is in use (hash, source, protected domains) and the extra protected domains
// this person adds (storage.local, decided by extra.mjs). Text goes in through textContent only.
import { normaliseExtra } from './extra.mjs';

const api = globalThis.browser ?? globalThis.chrome;
const $ = (id) => document.getElementById(id);

function row(dl, term, text) {
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.textContent = text;
  dl.append(dt, dd);
}

async function showBundle() {
  const info = await api.runtime.sendMessage({ type: 'typoguard-info' });
  const dl = $('bundle');
  dl.replaceChildren();
  if (!info || info.error) {
    row(dl, 'Status', `No bundle: ${info ? info.error : 'no answer'}. Nothing is checked.`);
    dl.classList.add('error');
    return;
  }
  row(dl, 'Status', `Checking recipients (policy mode: ${info.policy.mode})`);
  row(dl, 'Source', info.source);
  row(dl, 'sha256', info.sha256);
  row(dl, 'typoguard', info.typoguard);
  row(dl, 'Protected domains', info.protected.join(', '));
}

async function showExtras() {
  const managed = await api.storage.managed.get(null).catch(() => ({}));
  const { extraDomains = [] } = await api.storage.local.get('extraDomains');
  $('extra').value = extraDomains.join('\n');
  if (managed && managed.allowExtraDomains === false) {
    $('extra').disabled = true;
    $('save').disabled = true;
    $('saved').textContent = 'Your organisation does not allow extra domains here.';
  }
}

$('save').addEventListener('click', async () => {
  const lines = $('extra').value.split(/\s+/).filter(Boolean);
  const good = [];
  const bad = [];
  for (const line of lines) {
    const d = normaliseExtra(line);
    if (d) good.push(d);
    else bad.push(line);
  }
  await api.storage.local.set({ extraDomains: [...new Set(good)] });
  $('extra').value = [...new Set(good)].join('\n');
  $('saved').textContent = bad.length
    ? `Saved ${good.length}; ignored (not a domain name; write IDNs as xn--): ${bad.join(', ')}`
    : `Saved ${good.length} domain${good.length === 1 ? '' : 's'}.`;
});

showBundle();
showExtras();
