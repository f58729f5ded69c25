#!/usr/bin/env bash
# Builds the import station appliance: a Debian 13 (trixie) root filesystem made by mmdebstrap (systemd, udev,
# linux-image-amd64, Debian's nodejs 20.19, qemu-guest-agent, the écluse .deb, its units enabled; no network stack
# configured, nothing listening but ecluse-serve on loopback), as a raw ext4 disk image plus the kernel and initramfs
# to boot it (QEMU -kernel/-initrd, root=/dev/vda). No bootloader is installed yet.
#
# Usage: packaging/build-appliance.sh [--deb FILE] [--cache DIR] [--mirror URL] [--key-only]      (npm run appliance)
#   --deb FILE    the package to install (default: build it with packaging/build-deb.sh)
#   --cache DIR   where images are kept, by a hash of their inputs (default /var/cache/ecluse-appliance)
#   --mirror URL  Debian mirror (default http://deb.debian.org/debian)
#   --key-only    print the cache key of these inputs and stop
# Reuses the cached image when the inputs (the .deb, this script, the mirror, the suite) did not change. The last line
# on stdout is the folder holding disk.img, vmlinuz, initrd.img and inputs.json. Needs root, mmdebstrap, mkfs.ext4.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=/var/cache/ecluse-appliance
mirror=http://deb.debian.org/debian
suite=trixie
deb=
key_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb=${2:?}; shift 2 ;;
    --cache) cache=${2:?}; shift 2 ;;
    --mirror) mirror=${2:?}; shift 2 ;;
    --key-only) key_only=1; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-appliance: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in mmdebstrap mkfs.ext4 sha256sum; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] ||
    { echo "build-appliance: $tool is missing (run scripts/install-deps.sh appliance)" >&2; exit 3; }
done
[ "$(id -u)" -eq 0 ] || { echo "build-appliance: needs root (mmdebstrap in root mode)" >&2; exit 3; }
if [ -z "$deb" ]; then deb=$(bash "$repo/packaging/build-deb.sh" | tail -n 1); fi
[ -f "$deb" ] || { echo "build-appliance: $deb is not a file" >&2; exit 2; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

# The key: what the package holds (control fields, each file's bytes, links; not its timestamps), this script, the
# mirror and the suite.
debkey() {
  local x
  x=$(mktemp -d)
  dpkg-deb -x "$1" "$x"
  dpkg-deb -f "$1"
  (cd "$x" && find . -type f -print0 | sort -z | xargs -0 sha256sum && find . -type l -printf '%p -> %l\n' | sort)
  rm -rf "$x"
}
key=$( (debkey "$deb"; sha256sum <"$0"; echo "$mirror $suite") | sha256sum | cut -c1-16)
dest="$cache/$key"
if [ "$key_only" = 1 ]; then echo "$key"; exit 0; fi
if [ -f "$dest/inputs.json" ]; then
  echo "build-appliance: reusing $dest (inputs unchanged)" >&2
  echo "$dest"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/.build-$key.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
rootfs="$work/rootfs"
cp "$deb" "$work/ecluse.deb"

# The .deb is installed with dpkg inside, as an operator would with no network (its dependencies are in --include).
# A small initramfs: only what finds and mounts the root disk (virtio) and reads sticks is listed. Written before
# initramfs-tools is unpacked (conf.d is not one of its conffiles).
essential_hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && printf "MODULES=list\nCOMPRESS=zstd\n" >"$1/etc/initramfs-tools/conf.d/ecluse.conf"'
customize_hook=$(cat <<'HOOK'
set -e
r="$1"
printf '%s\n' virtio_pci virtio_blk virtio_console ext4 >>"$r/etc/initramfs-tools/modules"
chroot "$r" update-initramfs -u -k all >/dev/null
echo ecluse-station >"$r/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$r/etc/fstab"
: >"$r/etc/machine-id"
# The serial console for whoever boots it; no password: the operator sets one (passwd) or uses the guest agent.
mkdir -p "$r/etc/systemd/system/getty.target.wants"
ln -sf /usr/lib/systemd/system/serial-getty@.service "$r/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
# The journal kept on disk (the audit trail of the daemon survives a reboot).
mkdir -p "$r/var/log/journal"
rm -f "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*_Packages 2>/dev/null || true
HOOK
)
start=$(date +%s)
mmdebstrap --mode=root --variant=minbase --format=directory \
  --include=systemd,systemd-sysv,udev,linux-image-amd64,initramfs-tools,zstd,nodejs,qemu-guest-agent,dosfstools,exfatprogs,e2fsprogs,kmod \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --essential-hook="$essential_hook" \
  --customize-hook="copy-in $work/ecluse.deb /tmp" \
  --customize-hook='chroot "$1" dpkg -i /tmp/ecluse.deb && rm -f "$1/tmp/ecluse.deb"' \
  --customize-hook="$customize_hook" \
  "$suite" "$rootfs" "$mirror" >&2
cp -L "$rootfs/vmlinuz" "$work/vmlinuz"
cp -L "$rootfs/initrd.img" "$work/initrd.img"
mkfs.ext4 -q -L ecluse-root -d "$rootfs" "$work/disk.img" 3G >&2
rm -rf "$rootfs"
node -e '
  const [deb, mirror, suite, seconds] = process.argv.slice(1);
  console.log(JSON.stringify({ deb, mirror, suite, builtAt: new Date().toISOString(), buildSeconds: Number(seconds),
    boot: "qemu-system-x86_64 -kernel vmlinuz -initrd initrd.img -append \"root=/dev/vda rw console=ttyS0\" -drive file=disk.img,format=raw,if=virtio" }, null, 2));
' "$(basename "$deb")" "$mirror" "$suite" "$(($(date +%s) - start))" >"$work/inputs.json"
rm -f "$work/ecluse.deb"
mv "$work" "$dest"
trap - EXIT INT TERM
echo "build-appliance: built $dest in $(($(date +%s) - start)) s" >&2
echo "$dest"
