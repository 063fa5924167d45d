// The recipients of a compose window as addresses to check. Thunderbird gives each To/Cc/Bcc entry as a
// string ("Bob <bob@army.ml>") or as a ComposeRecipient ({id, type: 'contact' | 'mailingList'}) naming an
// address book entry; those are looked up, a mailing list member by member.

/** The address in "Display Name <local@domain>" (the last <...>), or the trimmed text itself. */
export function addressOf(text) {
  const s = String(text ?? '').trim();
  const open = s.lastIndexOf('<');
  const close = s.lastIndexOf('>');
  if (open !== -1 && close > open) return s.slice(open + 1, close).trim();
  return s;
}

/** `input` with its address's domain replaced by `intended`, display name kept: the one-click fix. */
export function replaceAddress(input, address, intended) {
  const at = address.lastIndexOf('@');
  if (at <= 0) return null;
  const fixed = `${address.slice(0, at)}@${intended}`;
  const s = String(input).trim();
  const open = s.lastIndexOf('<');
  const close = s.lastIndexOf('>');
  if (open !== -1 && close > open) return `${s.slice(0, open + 1)}${fixed}${s.slice(close)}`;
  return fixed;
}

function contactAddress(contact) {
  const props = contact?.properties ?? {};
  if (props.PrimaryEmail) return { address: props.PrimaryEmail, name: props.DisplayName ?? '' };
  // Thunderbird 128+: the vCard is the contact (Manifest V2 still has properties, kept for 115).
  const vcard = String(contact?.vCard ?? '');
  const email = /^EMAIL[^:\n]*:(.+)$/im.exec(vcard);
  const name = /^FN[^:\n]*:(.+)$/im.exec(vcard);
  return email ? { address: email[1].trim(), name: name ? name[1].trim() : '' } : null;
}

/**
 * Every recipient of `details` in `fields`: {rows, lists}. A row is {key, field, index, input, address,
 * fixable, list}; `index` is its entry in details[field] (a list's members share their list's entry, and
 * cannot be fixed one by one: the fix would replace the list). `lists` are the fields as given.
 */
export async function expandRecipients(api, details, fields) {
  const rows = [];
  const lists = {};
  for (const field of fields) {
    const entries = Array.isArray(details?.[field]) ? details[field] : (details?.[field] ? [details[field]] : []);
    lists[field] = entries;
    for (const [index, entry] of entries.entries()) {
      const base = { field, index };
      if (typeof entry === 'string') {
        if (entry.trim() === '') continue;
        rows.push({ ...base, input: entry, address: addressOf(entry), fixable: true, list: null });
      } else if (entry?.type === 'contact') {
        const found = contactAddress(await api.contacts.get(entry.id));
        if (found === null) throw new Error(`address book contact ${entry.id} has no e-mail address`);
        const input = found.name ? `${found.name} <${found.address}>` : found.address;
        rows.push({ ...base, input, address: found.address, fixable: true, list: null });
      } else if (entry?.type === 'mailingList') {
        const list = await api.mailingLists.get(entry.id);
        for (const member of await api.mailingLists.listMembers(entry.id)) {
          const found = contactAddress(member);
          if (found === null) continue; // a member without an address gets no mail
          rows.push({ ...base, input: found.address, address: found.address, fixable: false, list: list?.name ?? entry.id });
        }
      } else {
        throw new Error(`unknown recipient entry ${JSON.stringify(entry)}`);
      }
    }
  }
  rows.forEach((row, i) => { row.key = String(i); });
  return { rows, lists };
}
