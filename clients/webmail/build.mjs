#!/usr/bin/env node
// Assembles the loadable webmail extension (an unpacked directory) from clients/webmail/ and
// clients/detector/, with the bundle packaged in it. No npm dependencies (Node 18+).
//
//   node clients/webmail/build.mjs [--out DIR] [--bundle FILE | --no-bundle] [--match PATTERN]... [--test]
//
//   --out DIR        where to write it (default build/clients/webmail); the directory is replaced
//   --bundle FILE    the client bundle to package (default clients/webmail/bundle.json); it is verified
//   --no-bundle      package none: the extension then needs bundleUrl in managed storage
//   --match PATTERN  also run on these pages (a match pattern, e.g. https://mail.example.org/*): a
//                    Roundcube the organisation runs; repeatable
//   --test           the test build: also runs on http://127.0.0.1/* (any port), for the saved pages and the
//                    Roundcube lab of the test suite; its name says "(test build)". Never ship it.
//
// Prints the directory written. Exit 0 done, 2 usage or bundle error.

import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

import { loadBundle } from '../detector/detector.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const FILES = [
  'background.mjs',
  'extra.mjs',
  'recipients.js',
  'sites.js',
  'content.js',
  'content.css',
  'options.html',
  'options.mjs',
  'managed_schema.json',
];
const TEST_MATCH = 'http://127.0.0.1/*';
const PATTERN = /^(https?|\*):\/\/(\*|\*\.[^/*]+|[^/*]+)\/.*$/;

function fail(message) {
  process.stderr.write(`build-webmail: ${message}\n`);
  process.exit(2);
}

function parse(argv) {
  const opts = { out: join(ROOT, 'build', 'clients', 'webmail'), bundle: join(HERE, 'bundle.json'), matches: [], test: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : fail(`${a} needs a value`));
    if (a === '--out') opts.out = resolve(value());
    else if (a === '--bundle') opts.bundle = resolve(value());
    else if (a === '--no-bundle') opts.bundle = null;
    else if (a === '--match') opts.matches.push(value());
    else if (a === '--test') opts.test = true;
    else fail(`unknown argument ${a} (usage: build.mjs [--out DIR] [--bundle FILE | --no-bundle] [--match PATTERN]... [--test])`);
  }
  for (const m of opts.matches) if (!PATTERN.test(m)) fail(`--match ${m}: not a match pattern (https://host/*)`);
  return opts;
}

function main() {
  const opts = parse(process.argv.slice(2));
  let bundleText = null;
  if (opts.bundle !== null) {
    if (!existsSync(opts.bundle)) {
      fail(`${opts.bundle}: no bundle (typoguard export --format client-bundle --config FILE -o ${opts.bundle}), or --no-bundle`);
    }
    bundleText = readFileSync(opts.bundle, 'utf8');
    try {
      loadBundle(bundleText);
    } catch (err) {
      fail(`${opts.bundle}: ${err.message}`);
    }
  }
  if (existsSync(opts.out)) {
    if (readdirSync(opts.out).length && !existsSync(join(opts.out, 'manifest.json'))) {
      fail(`${opts.out} is not empty and holds no extension: not replacing it`);
    }
    rmSync(opts.out, { recursive: true });
  }
  mkdirSync(join(opts.out, 'detector'), { recursive: true });
  for (const f of FILES) cpSync(join(HERE, f), join(opts.out, f));
  const detectorDir = join(ROOT, 'clients', 'detector');
  for (const f of readdirSync(detectorDir)) {
    if (f.endsWith('.mjs') && f !== 'cli.mjs') cpSync(join(detectorDir, f), join(opts.out, 'detector', f));
  }
  if (bundleText !== null) writeFileSync(join(opts.out, 'bundle.json'), bundleText);

  const manifest = JSON.parse(readFileSync(join(HERE, 'manifest.json'), 'utf8'));
  const extra = [...opts.matches, ...(opts.test ? [TEST_MATCH] : [])];
  for (const cs of manifest.content_scripts) cs.matches = [...new Set([...cs.matches, ...extra])];
  if (opts.test) manifest.name += ' (test build)';
  writeFileSync(join(opts.out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  process.stdout.write(`${opts.out}\n`);
}

main();
