// The add-on's logic: on Send, check every To/Cc/Bcc recipient; when one is flagged, hold the message until
// the person fixes or confirms it in the review window. Every Thunderbird API it uses comes in through
// `api` (messenger in Thunderbird, a fake in tests/clients/thunderbird/), every side effect through `io`.
//
// Where a recipient's address goes: nowhere, unless the organisation set serverUrl and a check token in its
// policy (settings.mjs); then to that server alone, with a deadline (timeoutMs), and the packaged bundle
// decides whenever the server cannot (unreachable, slow, refusing the token, answering nonsense).

import { readSettings } from './settings.mjs';
import { addressOf, expandRecipients, replaceAddress } from './recipients.mjs';

// Severity as the server orders it (web/check.py); "invalid" outranks all: the address must be fixed.
export const ACTIONS = ['allow', 'warn', 'hold', 'reject', 'invalid'];
const FIELDS = ['to', 'cc', 'bcc'];
const REVIEW_WINDOW = { type: 'popup', width: 640, height: 520 };

/**
 * Registers the compose.onBeforeSend, runtime.onMessage and windows.onRemoved listeners.
 * io: {loadBundle(text) -> detector, readBundle() -> Promise<text>, fetch, setTimeout, clearTimeout, log}.
 * Returns the add-on's state, for the settings page and for tests.
 */
export function start(api, io) {
  const addon = new Addon(api, io);
  api.compose.onBeforeSend.addListener((tab, details) => addon.beforeSend(tab, details));
  api.runtime.onMessage.addListener((message, sender) => addon.onMessage(message, sender));
  api.windows.onRemoved.addListener((windowId) => addon.windowClosed(windowId));
  return addon;
}

class Addon {
  constructor(api, io) {
    this.api = api;
    this.io = io;
    this.detector = null;
    this.bundleError = null;
    this.loading = null;
    this.reviews = new Map(); // review id -> {review, resolve, windowId}
    this.nextId = 1;
    this.lastServerProblem = null;
    this.settingsProblems = [];
  }

  /** The packaged bundle's detector, loaded once (its sha256 verified); null with bundleError set. */
  async bundle() {
    if (this.loading === null) {
      this.loading = (async () => {
        try {
          this.detector = this.io.loadBundle(await this.io.readBundle());
        } catch (error) {
          this.bundleError = `the packaged bundle could not be loaded: ${error.message}`;
          this.io.log(`typoguard: ${this.bundleError}`);
        }
      })();
    }
    await this.loading;
    return this.detector;
  }

  async settings() {
    let raw = {};
    try {
      raw = await this.api.storage.managed.get();
    } catch {
      raw = {}; // no policy for this add-on: Thunderbird says so by throwing
    }
    const settings = readSettings(raw);
    this.settingsProblems = settings.problems;
    for (const problem of settings.problems) this.io.log(`typoguard: managed settings: ${problem}`);
    return settings;
  }

  /** compose.onBeforeSend: {} sends, {cancel: true} keeps the message open, {details} sends it amended. */
  async beforeSend(tab, details) {
    let review;
    try {
      review = await this.check(details ?? (await this.api.compose.getComposeDetails(tab.id)));
    } catch (error) {
      // A fault of the add-on itself: never send unchecked in silence, ask.
      review = { error: `typoguard could not check the recipients: ${error.message}`, rows: [], source: null };
      this.io.log(`typoguard: ${review.error}`);
    }
    if (review.error === undefined && !review.rows.some((row) => row.flagged)) return {};
    const decision = await this.ask(tab, review);
    return this.apply(tab, review, decision);
  }

  /** The recipients of `details`, each with its verdict: {rows, source, note, mode, lists}. */
  async check(details) {
    const { rows, lists } = await expandRecipients(this.api, details, FIELDS);
    const settings = await this.settings();
    const addresses = rows.map((row) => row.address);
    let verdicts = null;
    let source = 'bundle';
    let note = null;
    if (settings.server !== null && addresses.length > 0) {
      try {
        verdicts = await this.askServer(settings.server, addressOf(details.from ?? ''), addresses);
        source = 'server';
        this.lastServerProblem = null;
      } catch (error) {
        note = `${settings.server.checkUrl} did not answer (${error.message}): checked on this computer`;
        this.lastServerProblem = { at: new Date().toISOString(), problem: note };
        this.io.log(`typoguard: ${note}`);
      }
    }
    const detector = await this.bundle();
    if (verdicts === null) {
      if (detector === null) throw new Error(this.bundleError);
      verdicts = addresses.map((address) => detector.check(address));
    }
    const mode = detector?.info?.policy?.mode ?? 'enforce';
    rows.forEach((row, i) => {
      const v = verdicts[i];
      Object.assign(row, {
        action: v.action,
        domain: v.domain ?? null,
        intended: v.intended ?? null,
        kind: v.kind ?? null,
        score: v.score ?? 0,
        reason: v.reason ?? v.error ?? '',
        flagged: v.action !== 'allow',
        // Reject needs an explicit confirmation, unless the organisation runs typoguard in audit mode.
        mustConfirm: v.action === 'reject' && mode !== 'audit',
      });
      row.fix = row.flagged && row.intended && row.fixable ? replaceAddress(row.input, row.address, row.intended) : null;
    });
    return { rows, source, note, mode, lists };
  }

  /** POST /v1/check; throws on anything but a well-formed answer within the deadline. */
  async askServer(server, sender, recipients) {
    const controller = new AbortController();
    const timer = this.io.setTimeout(() => controller.abort(), server.timeoutMs);
    try {
      const response = await this.io.fetch(server.checkUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}` },
        body: JSON.stringify({ sender, recipients }),
        signal: controller.signal,
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
      });
      if (response.status !== 200) {
        throw new Error(`HTTP ${response.status}${response.status === 401 || response.status === 403 ? ', check the token' : ''}`);
      }
      const answer = await response.json();
      const verdicts = answer?.verdicts;
      if (!Array.isArray(verdicts) || verdicts.length !== recipients.length
          || verdicts.some((v) => !v || !ACTIONS.includes(v.action))) {
        throw new Error('an answer that is not /v1/check\'s');
      }
      return verdicts;
    } catch (error) {
      if (controller.signal.aborted) throw new Error(`no answer within ${server.timeoutMs} ms`);
      throw error;
    } finally {
      this.io.clearTimeout(timer);
    }
  }

  /** Opens the review window and waits for the person's decision (closing the window = do not send). */
  ask(tab, review) {
    const id = String(this.nextId++);
    review.id = id;
    return new Promise((resolve) => {
      const entry = { review, resolve, windowId: null };
      this.reviews.set(id, entry);
      const url = this.api.runtime.getURL(`review.html?id=${encodeURIComponent(id)}`);
      Promise.resolve(this.api.windows.create({ ...REVIEW_WINDOW, url })).then(
        (win) => { entry.windowId = win?.id ?? null; },
        (error) => {
          this.io.log(`typoguard: the review window could not be opened: ${error.message}; not sending`);
          this.finish(id, { action: 'edit' });
        },
      );
    });
  }

  finish(id, decision) {
    const entry = this.reviews.get(id);
    if (entry === undefined) return false;
    this.reviews.delete(id);
    entry.resolve(decision);
    return true;
  }

  /** runtime.onMessage from review.html: {type: 'typoguard:review', id} and {type: 'typoguard:decide', id, decision}. */
  onMessage(message, sender) {
    if (!message || typeof message.type !== 'string' || !message.type.startsWith('typoguard:')) return undefined;
    if (sender && sender.id !== undefined && sender.id !== this.api.runtime.id) return undefined;
    if (message.type === 'typoguard:status') return Promise.resolve(this.status());
    const entry = this.reviews.get(String(message.id));
    if (entry === undefined) return Promise.resolve({ error: 'this message was sent or closed already' });
    if (message.type === 'typoguard:review') return Promise.resolve(entry.review);
    if (message.type === 'typoguard:decide') {
      const problem = decisionProblem(entry.review, message.decision);
      if (problem !== null) return Promise.resolve({ error: problem });
      const windowId = entry.windowId;
      this.finish(String(message.id), message.decision);
      if (windowId !== null) Promise.resolve(this.api.windows.remove(windowId)).catch(() => {});
      return Promise.resolve({ ok: true });
    }
    return undefined;
  }

  windowClosed(windowId) {
    for (const [id, entry] of this.reviews) {
      if (entry.windowId === windowId) this.finish(id, { action: 'edit' });
    }
  }

  /** The decision's effect on the send: send as is, send amended, or back to the compose window (fixes applied). */
  async apply(tab, review, decision) {
    const choices = decision.choices ?? {};
    const fixes = review.rows.filter((row) => row.fix !== null && choices[row.key] === 'fix');
    let amended = null;
    if (fixes.length > 0) {
      amended = Object.fromEntries(FIELDS.map((f) => [f, [...(review.lists[f] ?? [])]]));
      for (const row of fixes) amended[row.field][row.index] = row.fix;
    }
    if (decision.action === 'send') return amended === null ? {} : { details: amended };
    if (amended !== null) await this.api.compose.setComposeDetails(tab.id, amended);
    return { cancel: true };
  }

  status() {
    return {
      bundle: this.detector?.info ? {
        sha256: this.detector.info.sha256,
        typoguard: this.detector.info.typoguard,
        protected: this.detector.info.protected,
        mode: this.detector.info.policy?.mode ?? 'enforce',
      } : null,
      bundleError: this.bundleError,
      settingsProblems: this.settingsProblems,
      lastServerProblem: this.lastServerProblem,
    };
  }
}

/** Why a decision from the review window cannot be carried out, or null. Send needs a choice for every
 * flagged recipient, and keeping a rejected one needs its explicit confirmation. */
export function decisionProblem(review, decision) {
  if (!decision || (decision.action !== 'send' && decision.action !== 'edit')) return 'decision must be send or edit';
  if (decision.action === 'edit') return null;
  if (review.error !== undefined) return decision.confirmUnchecked === true ? null : 'sending unchecked needs confirmUnchecked';
  const choices = decision.choices ?? {};
  const confirmed = new Set(decision.confirmReject ?? []);
  for (const row of review.rows.filter((r) => r.flagged)) {
    const choice = choices[row.key];
    if (choice === 'fix' && row.fix !== null) continue;
    if (choice !== 'keep') return `${row.address}: fix or keep it`;
    if (row.mustConfirm && !confirmed.has(row.key)) return `${row.address}: keeping a rejected recipient needs explicit confirmation`;
  }
  return null;
}
