// The content script: finds the compose window's recipients (sites.js), asks the background for each
// verdict, marks flagged recipients inline ("Did you mean ...?", one click to correct) and stops Send while
// any recipient is flagged until the person confirms (reject: only after ticking "I understand"). The DOM it
// adds is the contract of docs/clients.md ("Webmail extension"), which the tests rely on. No HTML parsed
// from strings: every text, recipient text above all, goes in through textContent.
'use strict';

(() => {
  const R = globalThis.typoguardRecipients;
  const S = globalThis.typoguardSites;
  const api = globalThis.browser ?? globalThis.chrome;
  const FLAGGED = new Set(['warn', 'hold', 'reject']);
  const OUR = '[data-typoguard-marks], [data-typoguard-dialog], [data-typoguard-notice]';
  const SEND_EVENTS = ['pointerdown', 'mousedown', 'pointerup', 'mouseup', 'click'];

  let site = null;
  let sha256 = null;
  let problem = null; // why recipients are not checked (no bundle), shown in the compose window
  const verdicts = new Map(); // lower-case address -> verdict (bounded: cleared past LIMIT)
  const LIMIT = 5000;
  let shownKey = '';
  let bypass = false; // the one Send the person confirmed is passing through
  let dialogOpen = false;

  const ask = (message) => api.runtime.sendMessage(message);

  /** Every recipient in `scope` (a compose window, or the page): [{field, address, chip}]. */
  function recipients(scope = document) {
    if (!site) return [];
    const out = [];
    for (const field of site.fields(document)) {
      if (!scope.contains(field.root)) continue;
      for (const e of field.entries()) out.push({ field, address: e.address, chip: e.chip });
    }
    return out;
  }

  async function checkMissing(list) {
    const missing = [...new Set(list.map((r) => r.address).filter((a) => !verdicts.has(a.toLowerCase())))];
    if (!missing.length) return;
    const reply = await ask({ type: 'typoguard-check', recipients: missing });
    if (!reply || reply.error) throw new Error(reply ? reply.error : 'no answer from the extension');
    if (verdicts.size > LIMIT) verdicts.clear();
    missing.forEach((a, i) => verdicts.set(a.toLowerCase(), reply.results[i]));
  }

  const verdictOf = (address) => verdicts.get(address.toLowerCase());

  /** The flagged recipients in `scope` now, or null if some recipient has no verdict yet. */
  function flaggedNow(scope = document) {
    const out = [];
    for (const r of recipients(scope)) {
      const v = verdictOf(r.address);
      if (v === undefined) return null;
      if (FLAGGED.has(v.action)) out.push({ ...r, verdict: v });
    }
    return out;
  }

  // ---- inline marks ----------------------------------------------------------------------------------

  function el(tag, attrs = {}, text = null) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== null) node.textContent = text;
    return node;
  }

  function flagFor(r) {
    const v = r.verdict;
    const flag = el('div', { 'data-typoguard-flag': v.action, class: `typoguard-flag typoguard-${v.action}` });
    flag.append(el('strong', {}, r.address), ' ');
    if (v.intended) {
      const fixed = R.corrected(r.address, v.intended);
      flag.append(el('span', {}, `Did you mean ${fixed}?`), ' ');
      const fix = el('button', { type: 'button', 'data-typoguard-fix': '', class: 'typoguard-fix' }, `Use ${fixed}`);
      // Keep the focus where it is: leaving a half-typed field makes the page turn it into a chip, which
      // moves this button away between the press and the release.
      fix.addEventListener('mousedown', (e) => e.preventDefault());
      fix.addEventListener('click', (e) => {
        e.preventDefault();
        e.stopPropagation();
        if (r.field.fix(r.address, fixed)) scanSoon(0);
        else flag.append(el('span', { class: 'typoguard-note' }, ' (could not change it here: please edit it by hand)'));
      });
      flag.append(fix);
    } else {
      flag.append(el('span', {}, 'looks like a protected domain.'));
    }
    flag.append(el('div', { class: 'typoguard-reason' }, v.reason));
    return flag;
  }

  function render(flagged) {
    const byRoot = new Map();
    for (const r of flagged) {
      if (!byRoot.has(r.field.root)) byRoot.set(r.field.root, []);
      byRoot.get(r.field.root).push(r);
    }
    const key = flagged.map((r) => `${r.field.kind}:${r.address}:${r.verdict.action}`).join('|');
    const shown = document.querySelectorAll('[data-typoguard-marks]').length;
    if (key === shownKey && shown === byRoot.size) return; // unchanged, and the page kept our marks
    shownKey = key;
    for (const old of document.querySelectorAll('[data-typoguard-marks]')) old.remove();
    for (const [root, list] of byRoot) {
      const box = el('div', { 'data-typoguard-marks': '', class: 'typoguard-marks', role: 'status' });
      for (const r of list) box.append(flagFor(r));
      root.after(box);
    }
  }

  // ---- watching the compose window ---------------------------------------------------------------------

  let timer = null;
  function scanSoon(delay = 150) {
    clearTimeout(timer);
    timer = setTimeout(scan, delay);
  }

  /** Never wrong in silence: a compose window with no bundle behind it says that nothing is checked. */
  function showProblem() {
    const fields = site.fields(document);
    if (!fields.length || document.querySelector('[data-typoguard-notice]') !== null) return;
    const note = el('div', { 'data-typoguard-notice': '', class: 'typoguard-marks typoguard-flag', role: 'status' });
    note.textContent = `typoguard is not checking these recipients: ${problem}`;
    fields[0].root.after(note);
  }

  async function scan() {
    if (!site) {
      site = S.detect(document, location.hostname);
      if (!site) return;
    }
    if (problem !== null) {
      showProblem();
      return;
    }
    if (!sha256) return;
    document.documentElement.dataset.typoguardReady = sha256;
    const list = recipients();
    try {
      await checkMissing(list);
    } catch (err) {
      document.documentElement.dataset.typoguardError = String(err.message || err);
      return;
    }
    const flagged = flaggedNow();
    if (flagged !== null) render(flagged);
  }

  function ours(node) {
    const e = node instanceof Element ? node : node.parentElement;
    return e !== null && e.closest(OUR) !== null;
  }

  // ---- Send ------------------------------------------------------------------------------------------

  function proceed(button) {
    bypass = true;
    setTimeout(() => {
      bypass = false;
    }, 1000);
    for (const type of SEND_EVENTS) {
      const Ctor = type.startsWith('pointer') ? PointerEvent : MouseEvent;
      button.dispatchEvent(new Ctor(type, { bubbles: true, cancelable: true, composed: true, button: 0, view: window }));
    }
    bypass = false;
  }

  /** The Send dialog for `flagged` recipients; or, with `failure`, for recipients that could not be checked. */
  function dialog(flagged, button, failure = null) {
    dialogOpen = true;
    const reject = flagged.some((r) => r.verdict.action === 'reject');
    const back = el('div', { class: 'typoguard-backdrop' });
    const box = el('div', {
      'data-typoguard-dialog': '',
      role: 'dialog',
      'aria-modal': 'true',
      'aria-labelledby': 'typoguard-dialog-title',
      class: 'typoguard-dialog',
    });
    const title = failure !== null ? 'typoguard could not check the recipients'
      : reject ? 'This mail is addressed to a look-alike domain' : 'Check the recipients before sending';
    box.append(el('h2', { id: 'typoguard-dialog-title' }, title));
    if (failure !== null) box.append(el('p', {}, `${failure}. Check the addresses yourself before sending.`));
    const ul = el('ul');
    for (const r of flagged) {
      const v = r.verdict;
      const li = el('li', { 'data-action': v.action });
      li.append(el('strong', {}, r.address));
      li.append(v.intended ? ` — did you mean ${R.corrected(r.address, v.intended)}? ` : ' — ');
      li.append(el('span', { class: 'typoguard-reason' }, v.reason));
      ul.append(li);
    }
    box.append(ul);
    const confirm = el('button', { type: 'button', 'data-typoguard-confirm': '', class: 'typoguard-confirm' }, 'Send anyway');
    if (reject) {
      const label = el('label', { class: 'typoguard-understand' });
      const tick = el('input', { type: 'checkbox', 'data-typoguard-understand': '' });
      label.append(tick, ' I understand this may send the mail to the wrong organisation, and I want to send it anyway');
      box.append(label);
      confirm.disabled = true;
      tick.addEventListener('change', () => {
        confirm.disabled = !tick.checked;
      });
    }
    const cancel = el('button', { type: 'button', 'data-typoguard-cancel': '', class: 'typoguard-cancel' }, 'Go back');
    const buttons = el('div', { class: 'typoguard-buttons' });
    buttons.append(cancel, confirm);
    box.append(buttons);
    const close = () => {
      back.remove();
      box.remove();
      dialogOpen = false;
    };
    cancel.addEventListener('click', close);
    confirm.addEventListener('click', () => {
      if (confirm.disabled) return;
      close();
      proceed(button);
    });
    box.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'Escape') close();
    });
    document.body.append(back, box);
    cancel.focus();
  }

  async function onSend(button) {
    const scope = S.composeOf(site, button);
    let flagged = flaggedNow(scope);
    // Recipients may change while the background answers: ask again, a few times at most.
    for (let tries = 0; flagged === null && tries < 3; tries++) {
      try {
        await checkMissing(recipients(scope));
      } catch (err) {
        // Never wrong in silence: say so, and let the person decide.
        const failure = String(err.message || err);
        document.documentElement.dataset.typoguardError = failure;
        dialog([], button, failure);
        return;
      }
      flagged = flaggedNow(scope);
      scanSoon(0);
    }
    if (flagged === null) {
      dialog([], button, 'The recipients kept changing while they were checked');
      return;
    }
    if (flagged.length) dialog(flagged, button);
    else proceed(button);
  }

  /** Capture-phase guard on everything that can press Send. */
  function guardPointer(e) {
    if (!site || !sha256 || bypass || ours(e.target)) return;
    const button = site.sendButton(e.target);
    if (!button) return;
    const flagged = flaggedNow(S.composeOf(site, button));
    if (flagged !== null && flagged.length === 0) return; // all allowed: untouched
    // Hidden from the page, but the press keeps its default: the focus leaves the recipient field as it
    // would, so the page commits what was typed there (Roundcube parses its input on `change`).
    e.stopImmediatePropagation();
    if (e.type !== 'click') return;
    e.preventDefault();
    if (!dialogOpen) onSend(button);
  }

  function guardKey(e) {
    if (!site || !sha256 || bypass || ours(e.target) || e.key !== 'Enter' && e.key !== ' ') return;
    let button = site.sendButton(e.target);
    if (!button && e.key === 'Enter' && (e.ctrlKey || e.metaKey) && e.target instanceof Element) {
      button = site.findSendButton(S.composeOf(site, e.target));
    }
    if (!button) return;
    const flagged = flaggedNow(S.composeOf(site, button));
    if (flagged !== null && flagged.length === 0) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    if (!dialogOpen) onSend(button);
  }

  async function start() {
    let info;
    try {
      info = await ask({ type: 'typoguard-info' });
    } catch (err) {
      info = { error: String(err.message || err) };
    }
    if (!info || info.error) {
      problem = info ? info.error : 'no answer from the extension';
      document.documentElement.dataset.typoguardError = problem;
      console.warn('typoguard: not checking recipients:', problem);
    } else {
      sha256 = info.sha256;
      for (const type of SEND_EVENTS) window.addEventListener(type, guardPointer, true);
      window.addEventListener('keydown', guardKey, true);
    }
    window.addEventListener('input', () => scanSoon(), true);
    window.addEventListener('change', () => scanSoon(), true);
    new MutationObserver((records) => {
      if (records.some((m) => !ours(m.target))) scanSoon();
    }).observe(document.documentElement, { childList: true, subtree: true, characterData: true });
    api.storage.onChanged.addListener((changes, area) => {
      if (area === 'local' && changes.extraDomains) {
        verdicts.clear();
        scanSoon(0);
      }
    });
    scan();
  }

  start();
})();
