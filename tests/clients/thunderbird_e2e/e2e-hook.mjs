// Test-only: added to a copy of the built typoguard add-on by test_thunderbird_e2e.py (never packaged).
// The driver add-on asks it, by external message, to act in the open review window: it finds the page
// (extension.getViews), waits for its rows, and clicks as a person would. Answers what it saw.
const DRIVER = 'e2e-driver@typoguard';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function reviewDocument() {
  for (let i = 0; i < 100; i++) {
    const view = browser.extension.getViews().find((v) => v.location.pathname.endsWith('/review.html'));
    if (view && view.document.querySelector('#rows li')) return view.document;
    await sleep(100);
  }
  throw new Error('no review window with rows within 10 s');
}

messenger.runtime.onMessageExternal.addListener(async (message, sender) => {
  if (sender.id !== DRIVER) return undefined;
  const doc = await reviewDocument();
  const send = doc.querySelector('#send');
  const seen = { rows: [...doc.querySelectorAll('#rows li')].map((li) => li.textContent), sendDisabled: [send.disabled] };
  const clickAll = (selector) => doc.querySelectorAll(selector).forEach((el) => el.click());
  if (message.ui === 'fix-send' || message.ui === 'fix-edit') {
    clickAll('input[value=fix]');
    seen.sendDisabled.push(send.disabled);
    doc.querySelector(message.ui === 'fix-send' ? '#send' : '#edit').click();
  } else if (message.ui === 'keep-confirm-send') {
    clickAll('input[value=keep]');
    seen.sendDisabled.push(send.disabled); // a reject kept without the tick: Send stays disabled
    clickAll('input[type=checkbox]');
    seen.sendDisabled.push(send.disabled);
    send.click();
  }
  return seen;
});
