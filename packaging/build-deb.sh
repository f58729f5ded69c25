#!/usr/bin/env bash
# Builds the offline install artifact of the import station: ecluse_<version>_<arch>.deb (dpkg-deb, no other
# packaging tooling), installable with `apt install ./ecluse_*.deb` on a Debian 13 machine with no network.
#
# It holds only what runs: under /usr/lib/ecluse the bundled program (dist/ecluse/: main.js, its workers and chunks;
# no tsc output, no source maps), a minimal package.json (`"type": "module"`: Node loads dist/ecluse/*.js as ES
# modules because of it), systemd/ for `ecluse install-units`, and in node_modules/ only the packages the bundle
# leaves outside (RUNTIME_PACKAGES of scripts/bundle.ts) with their transitive dependencies (dist/scripts/
# runtime-deps.js, after npm ci --omit=dev from the lock; the bundled ones, express, zod, @sigstore/*, commander, …,
# are removed). The native addons better-sqlite3 and unix-dgram are built for Node 20, ABI 115, hence Depends:
# nodejs (>= 20.19), nodejs (<< 21). Also /usr/bin/ecluse, the units, the udev rule, the mount helper, the
# sysusers.d/tmpfiles.d snippets (placed by `ecluse install-units`), and the maintainer scripts of packaging/debian/.
#
# Usage: packaging/build-deb.sh [--out DIR] [--no-build]      (npm run package -- --out DIR)
#   --out DIR    where the .deb goes (default: dist-pkg/ in the repository)
#   --no-build   use dist/ as it is (default: npm run build first)
# The last line on stdout is the path of the .deb. SOURCE_DATE_EPOCH (default: the last commit's time) fixes every
# timestamp, so the same inputs give the same bytes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/dist-pkg"
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb dpkg npm node; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (apt-get install dpkg-dev nodejs npm)" >&2; exit 3; }
done
cd "$repo"
version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
if [ "$build" = 1 ]; then npm run -s build >&2; fi
[ -x dist/ecluse/main.js ] || { echo "build-deb: dist/ecluse/main.js is missing: run npm run build" >&2; exit 3; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/ecluse-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM
root="$stage/root"
lib="$root/usr/lib/ecluse"
mkdir -p "$lib" "$root/usr/bin" "$root/usr/share/doc/ecluse" "$root/DEBIAN"

# The program: the bundle alone (no source maps), package.json and the lock for npm ci, the systemd/ sources.
mkdir -p "$lib/dist"
cp -a dist/ecluse "$lib/dist/ecluse"
find "$lib/dist" -name '*.map' -delete
cp package.json package-lock.json "$lib/"
cp -a systemd "$lib/systemd"

# Production dependencies only, from the lock. Install scripts are not run here: the native addons are taken from
# this checkout's own build when it is the same version (npm ci built them for this Node), else rebuilt.
(cd "$lib" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >&2)
for addon in better-sqlite3 unix-dgram; do
  staged="$lib/node_modules/$addon"
  [ -d "$staged" ] || continue
  have="node_modules/$addon"
  if [ -d "$have/build/Release" ] &&
    [ "$(node -p "require('./$have/package.json').version")" = "$(node -p "require('$staged/package.json').version")" ]; then
    mkdir -p "$staged/build/Release"
    cp "$have"/build/Release/*.node "$staged/build/Release/"
  else
    (cd "$lib" && npm rebuild "$addon" --loglevel=error >&2)
  fi
  # Build leftovers: the SQLite amalgamation, object files, the test extension.
  rm -rf "$staged/deps" "$staged/src" "$staged/build/Release/obj" "$staged/build/Release/obj.target" \
    "$staged/build/Release/test_extension.node" "$staged/build/Release/.deps" "$staged/build/deps"
done
rm -f "$lib/package-lock.json" "$lib/node_modules/.package-lock.json"
# Only what the bundle loads from node_modules, and what that depends on; then a package.json that says ESM and
# nothing else (its dependencies are no longer all installed).
node dist/scripts/runtime-deps.js prune "$lib" >&2
node -e '
  const p = require(process.argv[1]);
  const min = { name: p.name, version: p.version, description: p.description, license: p.license, private: true, type: "module" };
  require("fs").writeFileSync(process.argv[1], JSON.stringify(min, null, 2) + "\n");
' "$lib/package.json"
# The addons must load under this Node, and every runtime package with what it needs, before anything is packed.
(cd "$lib" && BUNDLE_SCRIPT="$repo/dist/scripts/bundle.js" node --input-type=module -e '
  import { createRequire } from "node:module";
  const { RUNTIME_PACKAGES } = await import(process.env.BUNDLE_SCRIPT);
  const require = createRequire(process.cwd() + "/");
  const Database = require("better-sqlite3");
  new Database(":memory:").prepare("select 1").get();
  for (const p of RUNTIME_PACKAGES) await import(p);
' >&2) || { echo "build-deb: a runtime package does not load" >&2; exit 3; }

# Units, udev rule, mount helper, sysusers/tmpfiles snippets: where `ecluse install-units` puts them.
node dist/ecluse/main.js install-units --root "$root" --bin /usr/bin/ecluse --json >/dev/null
ln -s ../lib/ecluse/dist/ecluse/main.js "$root/usr/bin/ecluse"
cat >"$root/usr/share/doc/ecluse/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ecluse
License: Apache-2.0
Comment: The npm dependencies under /usr/lib/ecluse/node_modules carry their own licence files.

Files: *
Copyright: the écluse authors
License: Apache-2.0
 On Debian systems, the full text is in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT

for s in postinst prerm postrm; do install -m 0755 packaging/debian/$s "$root/DEBIAN/$s"; done
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" packaging/debian/control.in >"$root/DEBIAN/control"

# Owned by root, nothing writable by others, one timestamp.
chmod -R u+rwX,go+rX,go-w "$root"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$out/ecluse_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz -z6 --build "$root" "$deb.tmp" >&2
mv "$deb.tmp" "$deb"
echo "$deb"
