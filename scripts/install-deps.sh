#!/usr/bin/env bash
# Installs the Debian packages écluse's demo and tests use, when missing. Run it as yourself: it elevates itself
# through sudo only when something is missing and you are not root (root needs no sudo, which may not be installed):
#   python3-openstackclient, python3-glanceclient: the real OpenStack clients the tests and the demo drive
#   qemu-utils: qemu-img, to make a real qcow2 sample image
#   curl: waiting for servers in scripts
#   glance-api, python3-openstacksdk, python3-cursive: the reference Glance, the SDK and Nova's signature library
#   chromium: the browser test of the audit web view (driven by playwright-core)
#   e2fsprogs, dosfstools, xorriso: mkfs.ext4, mkfs.vfat and ISO images for the daemon tests (real loop mounts)
#   fusefat, fuseiso: the FUSE drivers that mount vfat and iso9660 in the daemon tests on kernels without them
#   mtools, exfat-fuse, exfatprogs: the FUSE tests' sticks that the daemon must refuse (Windows-style 8.3 names,
#     exFAT through fuseblk)
#   systemd, udev: systemd-analyze (verify and score the units), udevadm (the mount helper)
#   gpgv: verifies vendors' OpenPGP-signed checksum files (relay fetch, and vendor evidence at import)
#   gnupg: gpg, which the feed tests use to make vendor keys and signatures
#   keystone: the real Keystone (loopback, SQLite) that the outside-Glance feed authenticates against in the tests
#   skopeo, umoci, podman, docker-registry, apache2-utils (htpasswd), openssl: the container-image proof (issue 18):
#     a vendor registry and a site registry on loopback (basic auth through htpasswd, bearer tokens signed with an
#     openssl certificate), images built offline with umoci, copied and inspected with skopeo, pulled with podman
#     (the tests start their own registries on free ports with their own config: the docker-registry service the
#     package enables on :5000 on a systemd machine is never used, and may be disabled)
#   mmdebstrap, qemu-system-x86: the appliance image (npm run appliance: Debian 13 built with mmdebstrap) and its
#     proof under QEMU (test/packaging/appliance.slow.test.ts); dpkg-deb (dpkg) builds the .deb (npm run package)
# Usage: install-deps.sh [demo|test] (default test). `demo` installs only what `npm run demo` uses (the first four).
# Idempotent: does nothing when everything is there.
set -euo pipefail
mode=${1:-test}
need=()
command -v openstack >/dev/null || need+=(python3-openstackclient)
command -v glance >/dev/null || need+=(python3-glanceclient)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v curl >/dev/null || need+=(curl)
if [ "$mode" = test ]; then
# issue 5: the reference Glance for the conformance suite and staging tests, openstacksdk for the SDK script, and
# cursive (what Nova verifies img_signature with)
command -v glance-api >/dev/null || need+=(glance-api)
/usr/bin/python3 -c 'import openstack' 2>/dev/null || need+=(python3-openstacksdk)
/usr/bin/python3 -c 'import cursive' 2>/dev/null || need+=(python3-cursive)
command -v faketime >/dev/null || need+=(faketime)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v mkfs.ext4 >/dev/null || [ -x /usr/sbin/mkfs.ext4 ] || need+=(e2fsprogs)
command -v mkfs.vfat >/dev/null || [ -x /usr/sbin/mkfs.vfat ] || need+=(dosfstools)
command -v xorriso >/dev/null || need+=(xorriso)
command -v fusefat >/dev/null || need+=(fusefat)
command -v fuseiso >/dev/null || need+=(fuseiso)
command -v mcopy >/dev/null || need+=(mtools)
[ -x /sbin/mount.exfat-fuse ] || [ -x /usr/sbin/mount.exfat-fuse ] || need+=(exfat-fuse)
command -v mkfs.exfat >/dev/null || [ -x /usr/sbin/mkfs.exfat ] || [ -x /sbin/mkfs.exfat ] || need+=(exfatprogs)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v udevadm >/dev/null || [ -x /usr/bin/udevadm ] || need+=(udev)
command -v gpgv >/dev/null || need+=(gpgv)
command -v gpg >/dev/null || need+=(gnupg)
command -v keystone-manage >/dev/null || need+=(keystone)
# issue 17: the appliance image and its QEMU proof
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# issue 18: container images (test/helpers/oci/, test/e2e/oci-images*.slow.test.ts)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v podman >/dev/null || need+=(podman)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  # Not root: elevate only for the installation, and only through sudo when there is one (a fresh Debian where the
  # operator is root has no sudo, and needs none).
  if [ -n "${ECLUSE_INSTALL_DEPS_NO_SUDO:-}" ] || ! command -v sudo >/dev/null; then
    echo "install-deps: missing ${need[*]}; run this script as root (su -c '$0 $mode'), or install sudo" >&2
    exit 1
  fi
  echo "install-deps: missing ${need[*]}; installing them through sudo" >&2
  exec sudo -- "$0" "$mode"
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${need[*]}" >&2
apt-get update -qq >/dev/null
apt-get install -y -qq "${need[@]}" >/dev/null
