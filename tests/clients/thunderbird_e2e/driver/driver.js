// Test-only add-on installed next to typoguard in a throw-away Thunderbird profile (test_thunderbird_e2e.py):
// for each scenario in scenarios.json it opens a compose window, presses Send (compose.sendMessage) and,
// when typoguard's review window opens, asks the test hook inside typoguard (e2e-hook.mjs) to act in it
// as a person would, or closes it. Every outcome is POSTed to the test at http://127.0.0.1:<port>/report.
const TYPOGUARD = 'thunderbird-addon@typoguard';

async function main() {
  const config = await (await fetch(browser.runtime.getURL('scenarios.json'))).json();
  const report = (data) => fetch(`http://127.0.0.1:${config.port}/report`, { method: 'POST', body: JSON.stringify(data) });
  let current = null;
  messenger.windows.onCreated.addListener(async (win) => {
    if (win.type !== 'popup' || current === null) return;
    current.popups += 1;
    if (current.ui === 'close') {
      setTimeout(() => messenger.windows.remove(win.id), 500);
    } else {
      current.review = await messenger.runtime.sendMessage(TYPOGUARD, { ui: current.ui });
    }
  });
  try {
    for (const scenario of config.scenarios) {
      current = { ...scenario, popups: 0, review: null };
      const tab = await messenger.compose.beginNew({
        to: scenario.to, subject: scenario.name, plainTextBody: 'hello', isPlainText: true,
      });
      let result;
      try {
        await messenger.compose.sendMessage(tab.id, { mode: 'sendNow' });
        result = 'sent';
      } catch (error) {
        result = `not sent: ${error.message}`;
      }
      let to = null;
      if (result !== 'sent') to = (await messenger.compose.getComposeDetails(tab.id)).to;
      await report({ name: scenario.name, result, popups: current.popups, review: current.review, to });
    }
  } catch (error) {
    await report({ name: 'driver', result: `error: ${error}` });
  }
  await report({ name: 'done' });
}

main();
