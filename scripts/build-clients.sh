#!/usr/bin/env bash
# make clients: the mail-client add-ons with this configuration's bundle packaged in, in build/clients/
# (docs/clients.md, "Building: make clients"):
#   bundle.json                        typoguard export --format client-bundle --config $CONFIG
#   thunderbird/  typoguard-thunderbird-<version>.xpi    the Thunderbird add-on (clients/thunderbird/)
#   webmail/      typoguard-webmail-<version>.zip        the webmail extension (clients/webmail/build.mjs)
# The archives are deterministic (scripts/zip-deterministic.py): same sources and config, same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-examples/typoguard.toml}
OUT=${OUT:-build/clients}
PY=${PY:-.venv/bin/python}
TYPOGUARD=${TYPOGUARD:-.venv/bin/typoguard}
NODE=${NODE:-$(command -v node || command -v nodejs || echo node)}

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
if ! [[ $version =~ ^[0-9]+(\.[0-9]+){0,3}$ ]]; then
  echo "build-clients: typoguard version $version is not an add-on version (1 to 4 dot-separated numbers)" >&2
  exit 2
fi

rm -rf "$OUT"
mkdir -p "$OUT"
"$TYPOGUARD" export --format client-bundle --config "$CONFIG" -o "$OUT/bundle.json"

# Thunderbird: the add-on's files, the detector's modules in detector/, the bundle; the manifest's
# version set to typoguard's.
tb="$OUT/thunderbird"
mkdir -p "$tb/detector"
find clients/thunderbird -maxdepth 1 -type f \( -name '*.mjs' -o -name '*.html' -o -name '*.css' -o -name '*.json' \) \
  -exec cp {} "$tb/" \;
cp clients/detector/*.mjs "$tb/detector/"
rm -f "$tb/detector/cli.mjs"  # the command line is Node's, not the add-on's
cp "$OUT/bundle.json" "$tb/bundle.json"
"$PY" - "$tb/manifest.json" "$version" <<'PYEOF'
import json, sys
path, version = sys.argv[1:]
manifest = json.load(open(path, encoding="utf-8"))
manifest["version"] = version
open(path, "w", encoding="utf-8").write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
PYEOF
"$PY" scripts/zip-deterministic.py "$tb" "$OUT/typoguard-thunderbird-$version.xpi"

# Webmail: its own build script assembles the loadable directory.
if [ -f clients/webmail/build.mjs ]; then
  "$NODE" clients/webmail/build.mjs --bundle "$OUT/bundle.json" --out "$OUT/webmail"
  "$PY" scripts/zip-deterministic.py "$OUT/webmail" "$OUT/typoguard-webmail-$version.zip"
else
  echo "build-clients: clients/webmail/build.mjs not present: no webmail extension built"
fi
sha256sum "$OUT"/*.xpi "$OUT"/*.zip 2>/dev/null || true
