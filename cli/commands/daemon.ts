/** The import station's daemon: `ecluse daemon` (run by systemd) and `ecluse install-units`. */
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { asEcluseError, EcluseError } from '../../sneakernet/errors.js';
import { parseByteSize } from '../../sneakernet/volume-plan.js';
import { ImportDaemon, runDaemonUntilSignal } from '../../verifier/daemon/daemon.js';
import { checkInboxDir } from '../../verifier/daemon/inbox.js';
import { DEFAULT_UPDATE_SPOOL } from '../../verifier/self-update/hand-over.js';
import { libusbSource } from '../../verifier/daemon/usb-source.js';
import type { UsbDeviceSource } from '../../verifier/daemon/usb-sticks.js';
import { daemonLog } from '../../verifier/daemon/log.js';
import { systemdNotifier, watchdogMs } from '../../verifier/daemon/notify.js';
import { openSite } from '../../verifier/site.js';
import { DEFAULT_UPDATE_RESULTS } from '../../verifier/update-results.js';
import { resolveHome } from '../home.js';
import { report, type CommandContext } from '../output.js';

export const DEFAULT_MEDIA_ROOT = '/run/ecluse/media';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The files `install-units` installs: source name in systemd/, target folder under the root, mode. */
export const UNIT_FILES: ReadonlyArray<{ file: string; dir: string; mode: number }> = [
  { file: 'ecluse-daemon.service', dir: 'usr/lib/systemd/system', mode: 0o644 },
  { file: 'ecluse-serve.service', dir: 'usr/lib/systemd/system', mode: 0o644 },
  { file: '90-ecluse-media.rules', dir: 'usr/lib/udev/rules.d', mode: 0o644 },
  { file: 'ecluse-mount', dir: 'usr/libexec/ecluse', mode: 0o755 },
  { file: 'ecluse-update.path', dir: 'usr/lib/systemd/system', mode: 0o644 },
  { file: 'ecluse-update.service', dir: 'usr/lib/systemd/system', mode: 0o644 },
  { file: 'ecluse-update', dir: 'usr/libexec/ecluse', mode: 0o755 },
  { file: 'ecluse.sysusers.conf', dir: 'usr/lib/sysusers.d', mode: 0o644 },
  { file: 'ecluse.tmpfiles.conf', dir: 'usr/lib/tmpfiles.d', mode: 0o644 },
];

const TARGET_NAME: Record<string, string> = {
  'ecluse.sysusers.conf': 'ecluse.conf',
  'ecluse.tmpfiles.conf': 'ecluse.conf',
};

/** The repository's systemd/ folder, from the bundle (dist/ecluse/), dist/cli/commands/ or cli/commands/. */
function unitsSource(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'systemd', 'ecluse-daemon.service'))) return path.join(dir, 'systemd');
    dir = path.dirname(dir);
  }
  throw new EcluseError('E_NOT_FOUND', 'the systemd/ folder of écluse was not found beside the program');
}

export function installUnits(root: string, bin: string): Array<{ file: string; path: string }> {
  const src = unitsSource();
  const out: Array<{ file: string; path: string }> = [];
  for (const u of UNIT_FILES) {
    const dir = path.join(root, u.dir);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const target = path.join(dir, TARGET_NAME[u.file] ?? u.file);
    const text = fs.readFileSync(path.join(src, u.file), 'utf8').replaceAll('/usr/bin/ecluse', bin);
    const tmp = `${target}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text, { mode: u.mode });
    fs.chmodSync(tmp, u.mode);
    fs.renameSync(tmp, target);
    out.push({ file: u.file, path: target });
  }
  return out;
}

export function registerDaemon(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  program
    .command('daemon')
    .description(
      'run the import station: notice media mounted under the media roots, check them, import their bundles in\n' +
        'sequence order, one medium after the other (run by ecluse-daemon.service; logs to the journal, or one JSON\n' +
        'line per event on stdout)',
    )
    .option('--media-root <DIR>', `where media are mounted (repeatable; default ${DEFAULT_MEDIA_ROOT})`, collect, [])
    .option(
      '--inbox <DIR>',
      'also take bundles from a data-diode inbox: DIR/ecluse/bundles/<id>/ as on a stick, read once the sender\n' +
        'has written DIR/ecluse/bundles/<id>.complete last; then moved to DIR/.done/ or DIR/.refused/',
    )
    .option('--no-usb', 'do not watch USB hotplug (the usb package); media are still noticed when mounted')
    .option('--mount-timeout <SECONDS>', 'report a plugged stick that is not mounted within this time', '30')
    .option(
      '--allow-stick-serial <SERIAL>',
      "read only the site's own sticks, by USB serial (repeatable; identity, not authentication)",
      collect,
      [],
    )
    .option('--poll-ms <MS>', 'how often the mount table is read', '500')
    .option(
      '--update-results <DIR>',
      "the self-update installer's results folder: each outcome (installed, failed, rolled back, refused) is\n" +
        'appended to the audit log once, at start and whenever the folder changes',
      DEFAULT_UPDATE_RESULTS,
    )
    .option('--read-rate <SIZE>', 'read media at most this fast per second, e.g. 50M (default: no limit)')
    .option(
      '--update-spool <DIR>',
      "where écluse's own package is handed over to the privileged installer (docs/FORMAT.md 4.10)",
      DEFAULT_UPDATE_SPOOL,
    )
    .option(
      '--allow-fuse-drivers',
      'also accept vfat and iso9660 media served by the FUSE drivers fusefat and fuseiso (kernels without those\n' +
        'filesystems); still only when mounted ro,nosuid,nodev,noexec; other FUSE filesystems stay refused',
    )
    .addHelpText(
      'after',
      '\nStatus: `ecluse status` (or GET /status.json on `ecluse serve`). Stops on SIGTERM.\n' +
        'Under systemd each event is a journal entry with ECLUSE_* fields (journalctl -u ecluse-daemon -o json).\n\n' +
        'Examples:\n  ecluse --home /var/lib/ecluse daemon --media-root /run/ecluse/media\n' +
        "  ecluse --home /var/lib/ecluse daemon --inbox /srv/diode-inbox   # also a one-way gateway's folder\n",
    )
    .action(
      async (o: {
        mediaRoot: string[];
        inbox?: string;
        usb: boolean;
        mountTimeout: string;
        allowStickSerial: string[];
        pollMs: string;
        readRate?: string;
        updateSpool: string;
        allowFuseDrivers?: boolean;
        updateResults: string;
      }) => {
        const roots = (o.mediaRoot.length > 0 ? o.mediaRoot : [DEFAULT_MEDIA_ROOT]).map((r) => path.resolve(r));
        const pollMs = Number(o.pollMs);
        let site;
        try {
          if (!Number.isInteger(pollMs) || pollMs < 50 || pollMs > 60_000) {
            throw new EcluseError('E_USAGE', '--poll-ms must be a whole number from 50 to 60000');
          }
          const readRate = o.readRate ? parseByteSize(o.readRate) : undefined;
          const inbox = o.inbox ? path.resolve(o.inbox) : undefined;
          if (inbox) checkInboxDir(inbox);
          const mountTimeout = Number(o.mountTimeout);
          if (!Number.isInteger(mountTimeout) || mountTimeout < 1 || mountTimeout > 3600) {
            throw new EcluseError('E_USAGE', '--mount-timeout must be a whole number of seconds from 1 to 3600');
          }
          const allowedSerials = o.allowStickSerial.length > 0 ? o.allowStickSerial : null;
          site = openSite(resolveHome(home()));
          const log = daemonLog();
          const notifier = systemdNotifier();
          let usbSource: UsbDeviceSource | null = null;
          if (o.usb) {
            try {
              usbSource = await libusbSource();
            } catch (e) {
              log.log({ event: 'usb.unavailable', level: 'warning', message: asEcluseError(e).line() });
            }
          }
          const daemon = new ImportDaemon({
            site,
            mediaRoots: roots,
            pollMs,
            log: log.log,
            notifier,
            watchdogMs: watchdogMs(),
            mediaPolicy: { allowFuseDrivers: o.allowFuseDrivers === true, allowedSerials },
            ...(usbSource ? { usb: { source: usbSource, mountTimeoutMs: mountTimeout * 1000, allowedSerials } } : {}),
            ...(readRate ? { readRate } : {}),
            ...(inbox ? { inbox } : {}),
            updateResults: path.resolve(o.updateResults),
            updateSpool: path.resolve(o.updateSpool),
          });
          await runDaemonUntilSignal(daemon);
          notifier.close();
          log.close();
          site.db.close();
          process.exit(0);
        } catch (e) {
          site?.db.close();
          await report(ctx(), async () => {
            throw e;
          });
        }
      },
    );

  program
    .command('install-units')
    .description(
      'install the systemd units, the udev rule, the mount helper and the sysusers/tmpfiles snippets of the ' +
        'import station (under --root, default /)',
    )
    .option('--root <DIR>', 'install under this folder (a staging tree, or / for the running system)', '/')
    .option('--bin <PATH>', 'the ecluse program the units run', '/usr/bin/ecluse')
    .addHelpText(
      'after',
      '\nThen, on the running system:\n  systemd-sysusers && systemd-tmpfiles --create && udevadm control --reload\n' +
        '  systemctl daemon-reload && systemctl enable --now ecluse-daemon.service ecluse-serve.service\n' +
        '\nExample:\n  ecluse install-units --root / --bin /usr/bin/ecluse\n',
    )
    .action(async (o: { root: string; bin: string }) => {
      await report(ctx(), async () => {
        if (!path.isAbsolute(o.bin)) throw new EcluseError('E_USAGE', '--bin must be an absolute path');
        const root = path.resolve(o.root);
        const files = installUnits(root, o.bin);
        return {
          json: { root, files },
          human: [
            ...files.map((f) => `installed ${f.path}`),
            ...(root === '/'
              ? [
                  'now run: systemd-sysusers && systemd-tmpfiles --create && udevadm control --reload && ' +
                    'systemctl daemon-reload && systemctl enable --now ecluse-daemon ecluse-serve',
                ]
              : []),
          ],
        };
      });
    });
}
