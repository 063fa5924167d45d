// The settings page shows, read-only, what the add-on checks with and where recipients go.
const api = globalThis.messenger;
const status = await api.runtime.sendMessage({ type: 'typoguard:status' });
let managed = {};
try { managed = await api.storage.managed.get(); } catch { managed = {}; }
const rows = [
  ['Bundle', status.bundle ? `sha256 ${status.bundle.sha256}, typoguard ${status.bundle.typoguard}, mode ${status.bundle.mode}` : (status.bundleError ?? 'loaded at the first Send')],
  ['Protected domains', status.bundle ? status.bundle.protected.join(', ') : ''],
  ['Where recipients are checked', managed.serverUrl ? `${managed.serverUrl} (organisation policy), this computer when it does not answer` : 'on this computer only: nothing about recipients leaves it'],
  ['Policy problems', status.settingsProblems.join('; ') || 'none'],
  ['Last server problem', status.lastServerProblem ? `${status.lastServerProblem.at}: ${status.lastServerProblem.problem}` : 'none'],
];
const dl = document.querySelector('#status');
for (const [k, v] of rows) {
  const dt = document.createElement('dt'); dt.textContent = k;
  const dd = document.createElement('dd'); dd.textContent = v;
  dl.append(dt, dd);
}
