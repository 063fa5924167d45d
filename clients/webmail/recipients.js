// Recipient text as people type it into webmail ("Bob <bob@army.ml>, c@d; "Doe, Jane" <j@x>"), parsed into
// addresses, and rewritten with one address corrected. Pure: no DOM, no browser API. A classic script (content
// scripts cannot be ES modules), so it defines one global; Node's unit test loads it with node:vm.
'use strict';

globalThis.typoguardRecipients = (() => {
  /** Split a recipient list on `,` `;` and line breaks outside quotes, angle brackets and parentheses.
   * Returns [{text, start, end}] with the offsets of each (trimmed) entry in `list`. */
  function split(list) {
    const out = [];
    let quoted = false;
    let angle = 0;
    let paren = 0;
    let start = 0;
    const push = (end) => {
      let s = start;
      let e = end;
      while (s < e && /\s/.test(list[s])) s++;
      while (e > s && /\s/.test(list[e - 1])) e--;
      if (e > s) out.push({ text: list.slice(s, e), start: s, end: e });
    };
    for (let i = 0; i < list.length; i++) {
      const ch = list[i];
      if (ch === '\\' && quoted) {
        i++;
      } else if (ch === '"') {
        quoted = !quoted;
      } else if (!quoted && ch === '<') {
        angle++;
      } else if (!quoted && ch === '>' && angle > 0) {
        angle--;
      } else if (!quoted && ch === '(') {
        paren++;
      } else if (!quoted && ch === ')' && paren > 0) {
        paren--;
      } else if (!quoted && angle === 0 && paren === 0 && (ch === ',' || ch === ';' || ch === '\n' || ch === '\r')) {
        push(i);
        start = i + 1;
      }
    }
    push(list.length);
    return out;
  }

  /** One entry: `Name <addr>`, `"Name" <addr>`, `<addr>`, `mailto:addr`, `addr (comment)` or `addr`.
   * Returns {name, address, at}: `at` is the address's offset in `entry`. */
  function parseEntry(entry) {
    const angled = /<([^<>]*)>\s*$/.exec(entry);
    if (angled) {
      let name = entry.slice(0, angled.index).trim();
      if (name.length >= 2 && name[0] === '"' && name[name.length - 1] === '"') {
        name = name.slice(1, -1).replace(/\\(.)/g, '$1');
      }
      const inner = angled[1];
      const lead = inner.length - inner.trimStart().length;
      return { name, address: inner.trim(), at: angled.index + 1 + lead };
    }
    let at = 0;
    let address = entry;
    const comment = /\s*\([^()]*\)\s*$/.exec(address);
    if (comment) address = address.slice(0, comment.index);
    const mailto = /^mailto:/i.exec(address);
    if (mailto) {
      at = mailto[0].length;
      address = address.slice(at);
    }
    return { name: '', address: address.trim(), at };
  }

  /** Every recipient of a list, in order: [{text, name, address, start, end}] (start/end: the address's
   * offsets in `list`). Entries without an @ are kept: the detector calls them invalid, not us. */
  function parseList(list) {
    return split(String(list)).map((e) => {
      const p = parseEntry(e.text);
      const start = e.start + p.at;
      return { text: e.text, name: p.name, address: p.address, start, end: start + p.address.length };
    });
  }

  /** `list` with the first occurrence of `address` (as an address, not inside a name; case-insensitive)
   * replaced by `replacement`; null when it is not there. */
  function replaceAddress(list, address, replacement) {
    const want = String(address).toLowerCase();
    for (const r of parseList(list)) {
      if (r.address.toLowerCase() === want) {
        return list.slice(0, r.start) + replacement + list.slice(r.end);
      }
    }
    return null;
  }

  /** The address the detector suggests: the local part kept, the intended domain after the last @. */
  function corrected(address, intended) {
    const at = String(address).lastIndexOf('@');
    return at < 0 ? intended : address.slice(0, at + 1) + intended;
  }

  const FOUND = /[^\s<>()[\],;:"']+@[^\s<>()[\],;:"']+/;

  /** The first thing that looks like an address in a text (a chip's title, aria-label or text), or ''. */
  function findAddress(text) {
    const m = FOUND.exec(String(text || ''));
    return m ? m[0].replace(/^mailto:/i, '').replace(/[.]+$/, '') : '';
  }

  return Object.freeze({ split, parseEntry, parseList, replaceAddress, corrected, findAddress });
})();
