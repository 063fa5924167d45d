// The review window: each flagged recipient with typoguard's reason, "did you mean", and a choice to fix
// or keep it; keeping a rejected one needs its own tick. The background page decides nothing from here it
// would not check again (addon.mjs decisionProblem).
const api = globalThis.messenger;
const id = new URLSearchParams(location.search).get('id');
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

const LABEL = { warn: 'may be a typo', hold: 'probably a typo', reject: 'almost certainly a typo', invalid: 'not a valid address' };

const choices = {}; // recipient key -> 'fix' | 'keep'

function render(review) {
  const confirmReject = new Set();
  const flagged = review.rows.filter((row) => row.flagged);
  const list = $('#rows');
  if (review.error !== undefined) {
    $('#summary').textContent = review.error;
    const box = el('input', { type: 'checkbox', id: 'unchecked' });
    list.append(el('li', {}, el('label', {}, box, ' Send without checking the recipients')));
    box.addEventListener('change', () => { $('#send').disabled = !box.checked; });
    $('#send').addEventListener('click', () => decide({ action: 'send', confirmUnchecked: box.checked }));
    return;
  }
  $('#summary').textContent = `${flagged.length} of ${review.rows.length} recipients look like a typo of a domain your organisation protects.`;
  if (review.note) { $('#note').hidden = false; $('#note').textContent = review.note; }
  const update = () => {
    $('#send').disabled = !flagged.every((row) => (choices[row.key] === 'fix')
      || (choices[row.key] === 'keep' && (!row.mustConfirm || confirmReject.has(row.key))));
  };
  for (const row of flagged) {
    const name = `choice-${row.key}`;
    const item = el('li', { class: row.action },
      el('div', { class: 'address' }, `${row.field.toUpperCase()}: ${row.address}${row.list ? ` (list ${row.list})` : ''}`),
      el('div', { class: 'reason' }, `${LABEL[row.action] ?? row.action}: ${row.reason}`));
    if (row.fix !== null) {
      const fix = el('input', { type: 'radio', name, value: 'fix' });
      fix.addEventListener('change', () => { choices[row.key] = 'fix'; update(); });
      item.append(el('label', {}, fix, ` Did you mean ${row.fix}? Use it`));
    } else if (row.intended) {
      item.append(el('div', { class: 'reason' }, `Did you mean ${row.intended}? (a member of a mailing list: fix it in the address book)`));
    }
    const keep = el('input', { type: 'radio', name, value: 'keep' });
    keep.addEventListener('change', () => { choices[row.key] = 'keep'; update(); });
    item.append(el('label', {}, keep, ` Keep ${row.address}`));
    if (row.mustConfirm) {
      const sure = el('input', { type: 'checkbox' });
      sure.addEventListener('change', () => {
        if (sure.checked) { confirmReject.add(row.key); keep.checked = true; choices[row.key] = 'keep'; } else confirmReject.delete(row.key);
        update();
      });
      item.append(el('label', {}, sure, ` I am sure: send to ${row.domain ?? row.address}, not ${row.intended ?? 'the protected domain'}`));
    }
    list.append(item);
  }
  $('#send').addEventListener('click', () => decide({ action: 'send', choices, confirmReject: [...confirmReject] }));
}

async function decide(decision) {
  const answer = await api.runtime.sendMessage({ type: 'typoguard:decide', id, decision });
  if (answer?.error) { $('#problem').hidden = false; $('#problem').textContent = answer.error; }
}

// "Back to the message" applies the fixes chosen so far and keeps the message open.
$('#edit').addEventListener('click', () => decide({ action: 'edit', choices }));
const review = await api.runtime.sendMessage({ type: 'typoguard:review', id });
if (Array.isArray(review?.rows)) render(review);
else $('#summary').textContent = review?.error ?? 'typoguard: nothing to review';
