// Where each supported webmail keeps its recipients and its Send button. A classic content script (after
// recipients.js); defines globalThis.typoguardSites. The selectors for Gmail, Outlook on the web and Yahoo
// Mail were checked against saved copies of their compose pages only (tests/clients/fixtures/webmail/), not
// against the live sites; Roundcube's against Roundcube 1.6's elastic skin.
'use strict';

globalThis.typoguardSites = (() => {
  const R = globalThis.typoguardRecipients;
  const OUR = '[data-typoguard-marks], [data-typoguard-dialog], [data-typoguard-notice]';

  /** Set a form control's value as typing would, so the page's own code (React, jQuery) notices. */
  function setValue(el, value) {
    const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, value);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }

  function pressEnter(el) {
    for (const type of ['keydown', 'keypress', 'keyup']) {
      el.dispatchEvent(new KeyboardEvent(type, { key: 'Enter', code: 'Enter', keyCode: 13, which: 13, bubbles: true, cancelable: true }));
    }
  }

  /** Text typed into a contenteditable recipient box, outside its chips: its text nodes. */
  function looseTextNodes(box, chipSelector) {
    const out = [];
    const walk = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      const el = n.parentElement;
      if (el && (el.closest(chipSelector) || el.closest(OUR))) continue;
      out.push(n);
    }
    return out;
  }

  /** A recipient field made of chips plus a text input (Gmail, Outlook, Yahoo). */
  class ChipField {
    constructor(kind, root, spec) {
      this.kind = kind;
      this.root = root; // marks are shown right after this element
      this.spec = spec;
    }

    chips() {
      return [...this.root.querySelectorAll(this.spec.chip)].filter((c) => !c.closest(OUR));
    }

    input() {
      return this.root.querySelector(this.spec.input);
    }

    typed() {
      const input = this.input();
      if (!input) return '';
      if (input.isContentEditable) return looseTextNodes(input, this.spec.chip).map((n) => n.data).join('');
      return input.value || '';
    }

    /** [{address, chip}] in the field: chips first, then what is typed and not yet a chip. */
    entries() {
      const out = [];
      for (const chip of this.chips()) {
        const address = this.spec.address(chip);
        if (address) out.push({ address, chip });
      }
      for (const r of R.parseList(this.typed())) out.push({ address: r.address, chip: null });
      return out;
    }

    /** Replace `address` with `replacement`; true if done. */
    fix(address, replacement) {
      const input = this.input();
      const want = address.toLowerCase();
      const chip = this.chips().find((c) => this.spec.address(c).toLowerCase() === want);
      if (chip) {
        const remove = chip.querySelector(this.spec.remove);
        if (!remove || !input) return false;
        remove.click();
        if (input.isContentEditable) {
          input.append(document.createTextNode(replacement));
          input.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertText', data: replacement }));
        } else {
          setValue(input, replacement);
        }
        pressEnter(input);
        return true;
      }
      if (!input) return false;
      if (input.isContentEditable) {
        for (const node of looseTextNodes(input, this.spec.chip)) {
          const changed = R.replaceAddress(node.data, address, replacement);
          if (changed !== null) {
            node.data = changed;
            input.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertText' }));
            return true;
          }
        }
        return false;
      }
      const changed = R.replaceAddress(input.value, address, replacement);
      if (changed === null) return false;
      setValue(input, changed);
      return true;
    }
  }

  /** Roundcube 1.6 (elastic): a `ul.recipient-input` widget with `li.recipient` chips kept in step with the
   * hidden `#_to`/`#_cc`/`#_bcc` textarea; other skins show the textarea itself. */
  class RoundcubeField {
    constructor(kind, textarea) {
      this.kind = kind;
      this.textarea = textarea;
      const widget = textarea.parentElement && textarea.parentElement.querySelector('ul.recipient-input');
      this.widget = widget;
      this.root = widget || textarea;
    }

    input() {
      return this.widget ? this.widget.querySelector('li.input input, input') : null;
    }

    chips() {
      return this.widget ? [...this.widget.querySelectorAll('li.recipient')] : [];
    }

    /** A chip's address: `<span class="name">Bob</span><span class="email"> <bob@x>,</span>`, or with no
     * name `<span class="name">bob@x</span><span class="email">,</span>` (ui.js insert_recipient). */
    static chipAddress(li) {
      const email = li.querySelector('.email');
      const name = li.querySelector('.name');
      return R.findAddress(email ? email.textContent : '') || R.findAddress(name ? name.textContent : li.textContent);
    }

    /** With the widget: its chips, then what is typed in its input (the textarea lags behind the input);
     * without it: the textarea. */
    entries() {
      if (!this.widget) return R.parseList(this.textarea.value).map((r) => ({ address: r.address, chip: null }));
      const out = [];
      for (const li of this.chips()) {
        const address = RoundcubeField.chipAddress(li);
        if (address) out.push({ address, chip: li });
      }
      const input = this.input();
      if (input) for (const r of R.parseList(input.value)) out.push({ address: r.address, chip: null });
      return out;
    }

    fix(address, replacement) {
      const input = this.input();
      if (input && input.value) {
        const changed = R.replaceAddress(input.value, address, replacement);
        if (changed !== null) {
          setValue(input, changed);
          input.dispatchEvent(new Event('change', { bubbles: true }));
          return true;
        }
      }
      const changed = R.replaceAddress(this.textarea.value, address, replacement);
      if (changed === null) return false;
      setValue(this.textarea, changed);
      // The widget re-reads the textarea on `change` (elastic ui.js recipient_input).
      this.textarea.dispatchEvent(new Event('change', { bubbles: true }));
      return true;
    }
  }

  function chipSite(name, hosts, probe, send, kinds, spec, compose) {
    return {
      name,
      hosts,
      compose,
      spec,
      probe: (doc) => doc.querySelector(probe) !== null,
      fields: (doc) => {
        const out = [];
        for (const [kind, selector] of kinds) {
          for (const root of doc.querySelectorAll(selector)) out.push(new ChipField(kind, root, spec));
        }
        return out;
      },
      sendButton: (target) => (target instanceof Element ? target.closest(send) : null),
      findSendButton: (scope) => scope.querySelector(send),
    };
  }

  const attrAddress = (...attrs) => (chip) => {
    for (const a of attrs) {
      const found = R.findAddress(chip.getAttribute(a));
      if (found) return found;
    }
    return R.findAddress(chip.textContent);
  };

  // Gmail (2023- recipient editor): a region per field (name="to|cc|bcc") holding chips that carry the
  // address in data-hovercard-id, and a text input; Send is a div[role=button] with class aoO. Without
  // the name attributes, the fields are found from their inputs' (English) labels, "To recipients".
  const GMAIL_INPUT = 'input[aria-label$="recipients" i], textarea[aria-label$="recipients" i]';
  const gmail = chipSite(
    'gmail',
    /^mail\.google\.com$/,
    `div[name="to"] input, div[name="to"] textarea, ${GMAIL_INPUT}`,
    '.T-I.aoO, div[role="button"][data-tooltip^="Send"]',
    [['to', 'div[name="to"]'], ['cc', 'div[name="cc"]'], ['bcc', 'div[name="bcc"]']],
    {
      chip: '[data-hovercard-id*="@"], span[email]',
      input: 'input[type="text"], input:not([type]), textarea',
      remove: '[aria-label^="Remove"], .vM, .afX',
      address: attrAddress('data-hovercard-id', 'email'),
    },
    'div[role="dialog"], .M9, .AD, .aoI',
  );

  const gmailByName = gmail.fields;
  gmail.fields = (doc) => {
    const named = gmailByName(doc);
    if (named.length) return named;
    const inputs = [...doc.querySelectorAll(GMAIL_INPUT)];
    return inputs.map((input) => {
      // The field's region: the nearest ancestor holding chips and no other field's input.
      let root = input.parentElement;
      for (let el = root; el && !inputs.some((i) => i !== input && el.contains(i)); el = el.parentElement) {
        if (el.querySelector('[data-hovercard-id*="@"], span[email]')) {
          root = el;
          break;
        }
      }
      const kind = input.getAttribute('aria-label').trim().split(/\s+/)[0].toLowerCase();
      return new ChipField(kind, root, gmail.spec);
    });
  };

  // Outlook on the web: a contenteditable div[role=textbox] per field, labelled To/Cc/Bcc, with
  // recipient "pills" (data-lpc-hover-target-id, address in the title); Send: button[aria-label=Send].
  const outlookBox = (label) => `div[contenteditable="true"][role="textbox"][aria-label="${label}" i]`;
  const outlook = chipSite(
    'outlook',
    /^(outlook\.(live|office|office365)\.com|outlook\.cloud\.microsoft)$/,
    outlookBox('To'),
    'button[aria-label="Send" i], button[title^="Send" i]',
    [['to', outlookBox('To')], ['cc', outlookBox('Cc')], ['bcc', outlookBox('Bcc')]],
    {
      chip: '[data-lpc-hover-target-id]',
      input: ':scope', // the box itself is where text is typed
      remove: 'button[aria-label^="Remove" i]',
      address: attrAddress('title', 'aria-label'),
    },
    '[aria-label="Compose" i], [role="dialog"], [role="main"]',
  );
  // In Outlook the box holds the text: input() is the root itself.
  const outlookFields = outlook.fields;
  outlook.fields = (doc) =>
    outlookFields(doc).map((f) => {
      f.input = () => f.root;
      return f;
    });

  // Yahoo Mail: a container per field (data-test-id="container-to"), pills (data-test-id="pill", address
  // in the title) and an input; Send: button[data-test-id="compose-send-button"].
  const yahoo = chipSite(
    'yahoo',
    /^mail\.yahoo\.com$|\.mail\.yahoo\.com$/,
    '[data-test-id="container-to"]',
    'button[data-test-id="compose-send-button"]',
    [['to', '[data-test-id="container-to"]'], ['cc', '[data-test-id="container-cc"]'], ['bcc', '[data-test-id="container-bcc"]']],
    {
      chip: '[data-test-id="pill"]',
      input: 'input',
      remove: '[data-test-id="icon-btn-remove"], button[aria-label^="Remove" i]',
      address: attrAddress('title', 'data-email'),
    },
    '[data-test-id="compose"]',
  );

  // Roundcube, on any host: the compose form's #_to textarea plus a Roundcube page marker. (The page's
  // `rcmail` global cannot be seen from a content script's isolated world.)
  const RC_SEND = 'button.send, input.send, a.send, [onclick*="command(\'send\'"]';
  const roundcube = {
    name: 'roundcube',
    hosts: /./,
    compose: '#compose-content',
    probe: (doc) =>
      doc.querySelector('textarea#_to') !== null &&
      doc.querySelector('input[name="_task"][value="mail"], body.action-compose, #compose-content, script[src*="program/js/app"]') !== null,
    fields: (doc) =>
      ['to', 'cc', 'bcc']
        .map((kind) => [kind, doc.getElementById(`_${kind}`)])
        .filter(([, t]) => t instanceof HTMLTextAreaElement || t instanceof HTMLInputElement)
        .map(([kind, t]) => new RoundcubeField(kind, t)),
    sendButton: (target) => (target instanceof Element ? target.closest(RC_SEND) : null),
    findSendButton: (scope) => scope.querySelector(RC_SEND),
  };

  const ALL = [gmail, outlook, yahoo, roundcube];

  /** The compose window `el` is in (several can be open in Gmail): the nearest enclosing compose container
   * that holds a recipient field; the whole document when none does (never fewer recipients than there are). */
  function composeOf(site, el) {
    const fields = site.fields(el.ownerDocument);
    for (let n = el.closest(site.compose); n; n = n.parentElement && n.parentElement.closest(site.compose)) {
      if (fields.some((f) => n.contains(f.root))) return n;
    }
    return el.ownerDocument;
  }

  /** The adapter for this page: one whose host matches and whose compose form is present, else any whose
   * compose form is present (Roundcube on its own host; the saved pages in tests). */
  function detect(doc, host) {
    return ALL.find((s) => s !== roundcube && s.hosts.test(host) && s.probe(doc)) || ALL.find((s) => s.probe(doc)) || null;
  }

  return Object.freeze({ detect, composeOf, all: ALL });
})();
