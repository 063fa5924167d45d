#!/usr/bin/env bash
# make clients: the mail-client add-ons with this configuration's bundle packaged in, in build/clients/
# (docs/clients.md, "Building: make clients"):
#   bundle.json                                     typoguard export --format client-bundle --config $CONFIG
#   thunderbird/, typoguard-thunderbird-<version>.xpi   the Thunderbird add-on (clients/thunderbird/)
#   webmail/, typoguard-webmail-<version>.zip           the webmail extension (clients/webmail/build.mjs)
# The directories load unpacked (about:debugging); the archives are deterministic
# (scripts/zip-deterministic.py): the same sources, config and typoguard version give the same bytes.
# CLIENTS="thunderbird" builds only that one; OUT=DIR writes elsewhere (replaced); ADDON_VERSION=0.1.0.3 sets
# the add-ons' version (default typoguard's): a new bundle for deployed clients needs a higher one.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-examples/typoguard.toml}
OUT=${OUT:-build/clients}
PY=${PY:-.venv/bin/python}
TYPOGUARD=${TYPOGUARD:-.venv/bin/typoguard}
NODE=${NODE:-$(command -v node || command -v nodejs || echo node)}
CLIENTS=${CLIENTS:-thunderbird webmail}

version=${ADDON_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)}
if ! [[ $version =~ ^[0-9]+(\.[0-9]+){0,3}$ ]]; then
  echo "build-clients: $version is not an add-on version (1 to 4 dot-separated numbers; set ADDON_VERSION)" >&2
  exit 2
fi

rm -rf "$OUT"
mkdir -p "$OUT"
"$TYPOGUARD" export --format client-bundle --config "$CONFIG" -o "$OUT/bundle.json"

set_version() {  # the manifest's version := $version (one version for both clients and their archives)
  "$PY" -c 'import json, sys
path, version = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    manifest = json.load(f)
manifest["version"] = version
with open(path, "w", encoding="utf-8") as f:
    f.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")' "$1" "$version"
}

build_thunderbird() {
  # The add-on's own files, the detector's modules in detector/ (not its command line), the bundle; the
  # manifest's version set to typoguard's.
  local tb="$OUT/thunderbird"
  mkdir -p "$tb/detector"
  find clients/thunderbird -maxdepth 1 -type f \
    \( -name '*.mjs' -o -name '*.html' -o -name '*.css' -o -name '*.json' \) -exec cp {} "$tb/" \;
  find clients/detector -maxdepth 1 -type f -name '*.mjs' ! -name cli.mjs -exec cp {} "$tb/detector/" \;
  cp "$OUT/bundle.json" "$tb/bundle.json"
  set_version "$tb/manifest.json"
  "$PY" scripts/zip-deterministic.py "$tb" "$OUT/typoguard-thunderbird-$version.xpi"
}

build_webmail() {
  # The webmail extension's own build script assembles its loadable directory.
  "$NODE" clients/webmail/build.mjs --bundle "$OUT/bundle.json" --out "$OUT/webmail" >/dev/null
  set_version "$OUT/webmail/manifest.json"
  "$PY" scripts/zip-deterministic.py "$OUT/webmail" "$OUT/typoguard-webmail-$version.zip"
}

for client in $CLIENTS; do
  case $client in
    thunderbird) build_thunderbird ;;
    webmail) build_webmail ;;
    *) echo "build-clients: unknown client $client (thunderbird, webmail)" >&2; exit 2 ;;
  esac
done
