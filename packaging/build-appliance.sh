#!/usr/bin/env bash
# Builds the import station appliance: a Debian 13 (trixie) root filesystem made by mmdebstrap (systemd, udev,
# linux-image-amd64, Debian's nodejs 20.19, qemu-guest-agent, the écluse .deb, its units enabled; no network stack
# configured, nothing listening but ecluse-serve on loopback), as a raw ext4 disk image plus the kernel and initramfs
# to boot it (QEMU -kernel/-initrd, root=/dev/vda); self-update is on (ecluse-update.path). No bootloader yet.
#
# Usage: packaging/build-appliance.sh [--deb FILE] [--cache DIR] [--mirror URL] [--key-only]      (npm run appliance)
#   --deb FILE    the package to install (default: build it with packaging/build-deb.sh)
#   --cache DIR   where images are kept, by a hash of their inputs (default /var/cache/ecluse-appliance)
#   --mirror URL  Debian mirror (default http://deb.debian.org/debian)
#   --key-only    print the cache key of these inputs and stop
# Reuses the cached image when the inputs (the .deb, this script, the mirror, the suite) did not change, and the cached
# Debian base (everything but écluse) when only the .deb changed. The last line on stdout is the folder holding
# disk.img, vmlinuz, initrd.img and inputs.json. Needs root, mmdebstrap, mkfs.ext4, unshare.
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
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# Two layers, each cached by a hash of its inputs, so that a change to the code costs seconds, not a Debian install:
#   base-<key>/  the Debian root filesystem without écluse (base.tar, vmlinuz, initrd.img), keyed by this script, the
#                mirror and the suite: rebuilt with mmdebstrap (5-7 min on 2 cores) only when one of them changes;
#   <key>/       the bootable image (disk.img, vmlinuz, initrd.img, inputs.json): the base with the .deb installed by
#                dpkg in a chroot, as an operator would with no network; keyed by the base and what the package holds.
# Only the newest $keep images of each kind are kept.
keep=3
debkey() {
  # What the package holds: control fields, each file's bytes, links; not its timestamps.
  local x
  x=$(mktemp -d)
  dpkg-deb -x "$1" "$x"
  dpkg-deb -f "$1"
  (cd "$x" && find . -type f -print0 | sort -z | xargs -0 sha256sum && find . -type l -printf '%p -> %l\n' | sort)
  rm -rf "$x"
}
# The base is keyed by its recipe only (the lines between the two "base recipe" marks), the image by the whole script.
basekey=$( (sed -n '/^# --- the base recipe/,/^# --- end of the base recipe/p' "$0"; echo "$mirror $suite") |
  sha256sum | cut -c1-16)
key=$( (echo "$basekey"; sha256sum <"$0"; debkey "$deb") | sha256sum | cut -c1-16)
base="$cache/base-$basekey"
dest="$cache/$key"
if [ "$key_only" = 1 ]; then echo "$key"; exit 0; fi
if [ -f "$dest/inputs.json" ]; then
  touch "$dest"
  echo "build-appliance: reusing $dest (inputs unchanged)" >&2
  echo "$dest"
  exit 0
fi
mkdir -p "$cache"
start=$(date +%s)
work=
trap '[ -z "$work" ] || rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
prune() { # prune PATTERN: keeps the $keep newest folders matching PATTERN in the cache
  find "$cache" -mindepth 1 -maxdepth 1 -type d -name "$1" -printf '%T@ %p\n' | sort -rn | tail -n +$((keep + 1)) |
    cut -d' ' -f2- | while read -r old; do rm -rf "$old"; echo "build-appliance: removed old $old" >&2; done
}

# --- the base recipe
if [ -f "$base/base.tar" ]; then
  echo "build-appliance: reusing the base $base" >&2
else
  work=$(mktemp -d "$cache/.base-$basekey.XXXXXX")
  # A small initramfs: only what finds and mounts the root disk (virtio) is listed. Written before initramfs-tools
  # is unpacked (conf.d is not one of its conffiles).
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
# No getty on the six virtual terminals (an appliance has no keyboard session to offer; tty1 stays for a screen).
mkdir -p "$r/etc/systemd/system/getty.target.wants" "$r/etc/systemd/logind.conf.d"
ln -sf /usr/lib/systemd/system/serial-getty@.service "$r/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
printf '[Login]\nNAutoVTs=1\nReserveVT=0\n' >"$r/etc/systemd/logind.conf.d/ecluse.conf"
# Nothing scheduled that is not needed on a station that only reads sticks (apt has no network to reach anyway).
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer; do
  ln -sf /dev/null "$r/etc/systemd/system/$u"
done
# The journal kept on disk (the audit trail of the daemon survives a reboot).
mkdir -p "$r/var/log/journal"
rm -f "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*_Packages 2>/dev/null || true
HOOK
  )
  mmdebstrap --mode=root --variant=minbase --format=tar \
    --include=systemd,systemd-sysv,udev,linux-image-amd64,initramfs-tools,zstd,nodejs,qemu-guest-agent,dosfstools,exfatprogs,e2fsprogs,kmod \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --essential-hook="$essential_hook" \
    --customize-hook="$customize_hook" \
    --customize-hook="copy-out /boot $work" \
    "$suite" "$work/base.tar" "$mirror" >&2
  cp "$(ls "$work"/boot/vmlinuz-* | sort -V | tail -n 1)" "$work/vmlinuz"
  cp "$(ls "$work"/boot/initrd.img-* | sort -V | tail -n 1)" "$work/initrd.img"
  rm -rf "$work/boot"
  rm -rf "$base"
  mv "$work" "$base"
  work=
  echo "build-appliance: built the base $base in $(($(date +%s) - start)) s" >&2
  prune 'base-*'
fi
# --- end of the base recipe

# The package layer: the base unpacked, the .deb installed with dpkg in a chroot (its maintainer scripts create the
# user and enable the units; no systemd runs there), then one ext4 image of it.
layer=$(date +%s)
work=$(mktemp -d "$cache/.build-$key.XXXXXX")
rootfs="$work/rootfs"
mkdir "$rootfs"
tar -C "$rootfs" --numeric-owner --xattrs --xattrs-include='*' -xpf "$base/base.tar"
cp "$deb" "$rootfs/tmp/ecluse.deb"
unshare --mount --propagation private sh -euc '
  r=$1
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  chroot "$r" dpkg -i /tmp/ecluse.deb
  chroot "$r" systemctl enable ecluse-update.path
' sh "$rootfs" >&2
# Self-update on by default: the path unit the postinst enables (every package is re-verified by root against the
# pinned anchors before dpkg sees it: docs/FORMAT.md 4.10), enabled above too, and checked, so that an image never
# ships without it.
[ -L "$rootfs/etc/systemd/system/paths.target.wants/ecluse-update.path" ] ||
  { echo "build-appliance: ecluse-update.path is not enabled in the image" >&2; exit 3; }
# The installed package is kept for self-update to roll back to (ecluse-update, /var/lib/ecluse-update/current.deb).
install -d -m 0750 -g "$(chroot "$rootfs" getent group ecluse | cut -d: -f3)" "$rootfs/var/lib/ecluse-update"
install -m 0600 "$deb" "$rootfs/var/lib/ecluse-update/current.deb"
rm -f "$rootfs/tmp/ecluse.deb"
cp "$base/vmlinuz" "$base/initrd.img" "$work/"
mkfs.ext4 -q -L ecluse-root -d "$rootfs" "$work/disk.img" 3G >&2
rm -rf "$rootfs"
node -e '
  const [deb, mirror, suite, base, seconds] = process.argv.slice(1);
  console.log(JSON.stringify({ deb, mirror, suite, base, builtAt: new Date().toISOString(), buildSeconds: Number(seconds),
    boot: "qemu-system-x86_64 -kernel vmlinuz -initrd initrd.img -append \"root=/dev/vda rw console=ttyS0\" -drive file=disk.img,format=raw,if=virtio" }, null, 2));
' "$(basename "$deb")" "$mirror" "$suite" "$(basename "$base")" "$(($(date +%s) - layer))" >"$work/inputs.json"
rm -rf "$dest"
mv "$work" "$dest"
work=
prune '????????????????'
echo "build-appliance: built $dest in $(($(date +%s) - start)) s (the package layer: $(($(date +%s) - layer)) s)" >&2
echo "$dest"
