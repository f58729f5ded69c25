#!/usr/bin/env bash
# The whole job on embedded defaults, as two operators would do it, in ./.demo:
#   export station: root ceremony (two signers), a sample qcow2 image made on the spot, a bundle signed by both and
#   split over 64 MiB volumes onto a folder standing in for a USB stick;
#   import station: install the trust anchors, import the stick, serve the Glance API, and the real
#   `openstack image list` / `image save` against it.
# Usage: npm run demo   (after npm ci; installs the OpenStack client through scripts/install-deps.sh if root)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=${DEMO_DIR:-$ROOT/.demo}
export ECLUSE_PASSPHRASE=${ECLUSE_PASSPHRASE:-demo-passphrase}
# site init run as root pins the self-update anchors (docs/FORMAT.md 4.10): the demo's go beside it, not in /etc.
export ECLUSE_SELF_UPDATE_ANCHORS=${ECLUSE_SELF_UPDATE_ANCHORS:-$DEMO/self-update-anchors}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

bash scripts/install-deps.sh demo
[ -f dist/ecluse/main.js ] || npm run build --silent
ecluse() { node "$ROOT/dist/ecluse/main.js" "$@"; }

rm -rf "$DEMO"; mkdir -p "$DEMO"
say "export station: root ceremony with signers alice and bob"
ecluse keys init --out "$DEMO/keys" --signers alice,bob

say "export station: a sample VM image (qcow2, 256 MiB virtual, some data written)"
head -c $((96 * 1024 * 1024)) /dev/urandom > "$DEMO/disk.raw"
qemu-img convert -f raw -O qcow2 "$DEMO/disk.raw" "$DEMO/demo-cloud-1.0.0.qcow2"
qemu-img resize -q "$DEMO/demo-cloud-1.0.0.qcow2" 256M
rm "$DEMO/disk.raw"
ecluse --home "$DEMO/outside" relay add "$DEMO/demo-cloud-1.0.0.qcow2" --name demo-cloud --version 1.0.0 \
  --property os_distro=debian --property hw_disk_bus=virtio

say "export station: bundle signed by alice and bob, split into 64 MiB volumes, onto the 'USB stick'"
mkdir -p "$DEMO/usb-stick" # export writes onto a mounted medium: the folder must exist
ecluse --home "$DEMO/outside" export --to "$DEMO/usb-stick" --site demo-site \
  --signer "$DEMO/keys/signers/alice" --signer "$DEMO/keys/signers/bob" --media-size 64M --expires 30d

say "import station: install the trust anchors (once), look at the stick, import it"
ecluse --home "$DEMO/inside" site init --trust "$DEMO/keys/trust" --site demo-site --threshold 2
ecluse --home "$DEMO/inside" inspect "$DEMO/usb-stick"
ecluse --home "$DEMO/inside" import "$DEMO/usb-stick"

say "import station: the same stick again is refused"
if ecluse --home "$DEMO/inside" import "$DEMO/usb-stick"; then echo "a replay was accepted!" >&2; exit 1; fi

PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
say "import station: ecluse serve on 127.0.0.1:$PORT, and the real OpenStack client"
node "$ROOT/dist/ecluse/main.js" --home "$DEMO/inside" serve --listen "127.0.0.1:$PORT" >"$DEMO/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/versions" >/dev/null && break; sleep 0.1; done
osc() { openstack --os-auth-type none --os-endpoint "http://127.0.0.1:$PORT" "$@"; }
osc image list
osc image save --file "$DEMO/downloaded.qcow2" demo-cloud
cmp "$DEMO/downloaded.qcow2" "$DEMO/demo-cloud-1.0.0.qcow2"
echo "image save: identical bytes (md5 checked by the client against Content-MD5)"
qemu-img info "$DEMO/downloaded.qcow2" | head -3
say "done: state is in $DEMO (outside/, inside/, usb-stick/, keys/)"
