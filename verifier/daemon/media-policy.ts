/**
 * What media the daemon accepts: only the filesystems of removable media (vfat, exfat, iso9660, ext4), and only when
 * mounted read-only, nosuid, nodev and noexec. udev and systemd-mount mount them that way (systemd/); the daemon
 * checks again on every new mount and refuses anything else, saying why.
 */
import { EcluseError } from '../../sneakernet/errors.js';
import type { MountEntry } from './mountinfo.js';

export const ACCEPTED_FILESYSTEMS: readonly string[] = ['vfat', 'exfat', 'iso9660', 'ext4'];
export const REQUIRED_OPTIONS: readonly string[] = ['ro', 'nosuid', 'nodev', 'noexec'];

/** Throws E_MEDIA_REFUSED when the mount is not one the daemon may read. */
export function checkMediaMount(m: MountEntry): void {
  if (!ACCEPTED_FILESYSTEMS.includes(m.fstype)) {
    throw new EcluseError(
      'E_MEDIA_REFUSED',
      `${m.mountPoint} is a ${m.fstype} filesystem; only ${ACCEPTED_FILESYSTEMS.join(', ')} media are accepted`,
      { check: 'media-filesystem', fstype: m.fstype },
    );
  }
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
}

/** Notes worth auditing about an accepted mount (not refusals). */
export function mountWarnings(m: MountEntry): string[] {
  const out: string[] = [];
  if (m.fstype === 'ext4' && !m.superOptions.includes('norecovery') && !m.superOptions.includes('noload')) {
    out.push('ext4 mounted without noload: a dirty journal may have been replayed onto the stick');
  }
  return out;
}
