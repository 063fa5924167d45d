#!/usr/bin/env node
// node clients/detector/cli.mjs BUNDLE.json < recipients
//
// The contract of `typoguard check --format json -`, answered locally from a client bundle: one recipient a
// line on standard input (UTF-8; invalid bytes are reported as invalid), one JSON object a line on standard
// output, in order, with the same keys. Exit 0 if all are allowed, 1 if any is flagged or invalid, 2 on a
// usage or bundle error. Answers are written as input arrives, so a tool may write one line and wait.

import { readFileSync } from 'node:fs';
import process from 'node:process';

import { BundleError, loadBundle } from './detector.mjs';
import { decodeSurrogateEscape, printable, pyStrip } from './unicode.mjs';

const EXIT_OK = 0;
const EXIT_FLAGGED = 1;
const EXIT_USAGE = 2;

function usage(message) {
  process.stderr.write(`typoguard-detector: ${message}\n`);
  process.exit(EXIT_USAGE);
}

/** A float as Python prints it (1.0, not 1), so the output reads like the server's. */
function pyFloat(x) {
  return Number.isInteger(x) ? x.toFixed(1) : String(x);
}

function jsonLine(v) {
  let line = `{"recipient":${JSON.stringify(printable(v.recipient))},"domain":${JSON.stringify(v.domain)}` +
    `,"action":"${v.action}","intended":${JSON.stringify(v.intended)},"kind":${JSON.stringify(v.kind)}` +
    `,"score":${pyFloat(v.score)},"reason":${JSON.stringify(v.reason)}`;
  if (v.error !== undefined) line += `,"error":${JSON.stringify(v.error)}`;
  return line + '}\n';
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 1 || args[0].startsWith('-')) usage('usage: node cli.mjs BUNDLE.json < recipients');
  let detector;
  try {
    detector = loadBundle(readFileSync(args[0], 'utf8'));
  } catch (err) {
    if (err instanceof BundleError || err.code) usage(`${args[0]}: ${err.message}`);
    throw err;
  }
  let flagged = false;
  let pending = Buffer.alloc(0);
  const out = process.stdout;
  const answer = (raw) => {
    let end = raw.length;
    while (end > 0 && raw[end - 1] === 0x0d) end--;
    const v = detector.check(pyStrip(decodeSurrogateEscape(raw.subarray(0, end))));
    if (v.action !== 'allow') flagged = true;
    return jsonLine(v);
  };
  for await (const chunk of process.stdin) {
    const data = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const lines = [];
    let start = 0;
    for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, start)) {
      lines.push(answer(data.subarray(start, nl)));
      start = nl + 1;
    }
    pending = Buffer.from(data.subarray(start));
    if (lines.length && !out.write(lines.join(''))) await new Promise((resolve) => out.once('drain', resolve));
  }
  if (pending.length) out.write(answer(pending));
  await new Promise((resolve) => out.write('', resolve));
  process.exitCode = flagged ? EXIT_FLAGGED : EXIT_OK;
}

main().catch((err) => {
  process.stderr.write(`typoguard-detector: ${err.stack || err}\n`);
  process.exit(EXIT_USAGE);
});
