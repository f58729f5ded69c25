/**
 * What media the daemon accepts: only the filesystems of removable media (vfat, exfat, iso9660, ext4), and only when
 * mounted read-only, nosuid, nodev and noexec. udev and systemd-mount mount them that way (systemd/); the daemon
 * checks again on every new mount and refuses anything else, saying why.
 *
 * On a kernel without vfat or iso9660, the station may let the FUSE drivers fusefat and fuseiso serve them
 * (`ecluse daemon --allow-fuse-drivers`, off by default: they parse the medium in user space, outside the kernel's
 * maintained drivers). Only those two are known: mountinfo names them `fuse.fusefat` and `fuse.fuseiso`. Any other
 * FUSE type is refused, `fuseblk` included (exfat-fuse and ntfs-3g both appear so, without saying which it is).
 */
import { EcluseError } from '../../sneakernet/errors.js';
import type { MountEntry } from './mountinfo.js';

export const ACCEPTED_FILESYSTEMS: readonly string[] = ['vfat', 'exfat', 'iso9660', 'ext4'];
export const REQUIRED_OPTIONS: readonly string[] = ['ro', 'nosuid', 'nodev', 'noexec'];

/** FUSE drivers known to implement an accepted filesystem, by their mountinfo type. */
export const FUSE_DRIVERS: Readonly<Record<string, string>> = {
  'fuse.fusefat': 'vfat',
  'fuse.fuseiso': 'iso9660',
};

export interface MediaPolicy {
  /** Accept the FUSE drivers of FUSE_DRIVERS (still with the required options). */
  allowFuseDrivers: boolean;
  /** Read only USB sticks with one of these serials (site-issued media: identity, never authentication); null: any. */
  allowedSerials?: readonly string[] | null;
}

/** Throws E_MEDIA_REFUSED when the site lists its sticks and this medium is not one of them. */
export function checkStickSerial(serial: string | null | undefined, policy: MediaPolicy): void {
  if (!policy.allowedSerials) return;
  if (serial && policy.allowedSerials.includes(serial)) return;
  throw new EcluseError(
    'E_MEDIA_REFUSED',
    `${serial ? `the stick with serial ${serial}` : 'a medium without a USB serial'} is not one of this site's ` +
      'sticks (--allow-stick-serial): nothing on it is read; use a stick the site issued',
    { check: 'stick-serial' },
  );
}

export const DEFAULT_MEDIA_POLICY: MediaPolicy = { allowFuseDrivers: false };

/** The filesystem a mount holds and, when a FUSE driver serves it, the driver's mountinfo type. */
export interface MediaFilesystem {
  filesystem: string;
  fuseDriver: string | null;
}

/** `vfat`, or `vfat via fuse.fusefat`. */
export function describeFilesystem(f: MediaFilesystem): string {
  return f.fuseDriver ? `${f.filesystem} via ${f.fuseDriver}` : f.filesystem;
}

const isFuse = (fstype: string) => /^fuse(blk)?(\.|$)/.test(fstype);

function refuseFilesystem(m: MountEntry, policy: MediaPolicy): never {
  const context = { check: 'media-filesystem', fstype: m.fstype };
  const known = FUSE_DRIVERS[m.fstype];
  if (known && !policy.allowFuseDrivers) {
    throw new EcluseError(
      'E_MEDIA_REFUSED',
      `${m.mountPoint} is ${known} served by the FUSE driver ${m.fstype.slice(5)}; FUSE drivers are accepted only ` +
        'when the daemon runs with --allow-fuse-drivers',
      context,
    );
  }
  if (isFuse(m.fstype)) {
    const why = m.fstype.startsWith('fuseblk')
      ? ' (fuseblk does not say which driver serves it: exfat-fuse and ntfs-3g both appear so)'
      : '';
    throw new EcluseError(
      'E_MEDIA_REFUSED',
      `${m.mountPoint} is a FUSE filesystem (${m.fstype}) not known to implement one of ` +
        `${ACCEPTED_FILESYSTEMS.join(', ')}${why}; the FUSE drivers accepted with --allow-fuse-drivers are ` +
        `${Object.keys(FUSE_DRIVERS).join(', ')}`,
      context,
    );
  }
  throw new EcluseError(
    'E_MEDIA_REFUSED',
    `${m.mountPoint} is a ${m.fstype} filesystem; only ${ACCEPTED_FILESYSTEMS.join(', ')} media are accepted`,
    context,
  );
}

/** Throws E_MEDIA_REFUSED when the mount is not one the daemon may read; else says what it holds. */
export function checkMediaMount(m: MountEntry, policy: MediaPolicy = DEFAULT_MEDIA_POLICY): MediaFilesystem {
  let found: MediaFilesystem;
  if (ACCEPTED_FILESYSTEMS.includes(m.fstype)) found = { filesystem: m.fstype, fuseDriver: null };
  else if (FUSE_DRIVERS[m.fstype] && policy.allowFuseDrivers) {
    found = { filesystem: FUSE_DRIVERS[m.fstype] as string, fuseDriver: m.fstype };
  } else refuseFilesystem(m, policy);
  const missing = REQUIRED_OPTIONS.filter((o) => !m.options.includes(o));
  if (missing.length > 0) {
    const writable = m.options.includes('rw');
    throw new EcluseError(
      'E_MEDIA_REFUSED',
      `${m.mountPoint} is mounted ${writable ? 'writable' : 'with unsafe options'} (${m.options.join(',')}): ` +
        `it must be mounted ${REQUIRED_OPTIONS.join(',')} (missing ${missing.join(', ')})`,
      { check: 'media-options', options: m.options.join(',') },
    );
  }
  if (!m.superOptions.includes('ro')) {
    throw new EcluseError(
      'E_MEDIA_REFUSED',
      `the filesystem on ${m.mountPoint} is writable underneath (superblock ${m.superOptions.join(',')}): ` +
        'it must be mounted read-only',
      { check: 'media-options', options: m.superOptions.join(',') },
    );
  }
  return found;
}

/** Notes worth auditing about an accepted mount (not refusals). */
export function mountWarnings(m: MountEntry): string[] {
  const out: string[] = [];
  if (m.fstype === 'ext4' && !m.superOptions.includes('norecovery') && !m.superOptions.includes('noload')) {
    out.push('ext4 mounted without noload: a dirty journal may have been replayed onto the stick');
  }
  const fuse = FUSE_DRIVERS[m.fstype];
  if (fuse) out.push(`${fuse} served in user space by the FUSE driver ${m.fstype.slice(5)}, not by the kernel`);
  return out;
}
