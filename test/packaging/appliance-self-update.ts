/**
 * The appliance proof's last scenarios, self-update through the lock (registered by appliance.slow.test.ts inside its
 * one boot, after the import scenarios: the station's state carries over). The next version of the package and one
 * whose daemon never reports READY each travel as an `ecluse-package` artifact in a bundle exported for vm-1; the
 * daemon imports and hands them over, the path unit (enabled as shipped) starts the root installer, which re-verifies
 * each against the anchors root pinned and installs it (or rolls it back); a package root drops in without evidence is
 * refused. The installer's journal and the audit log (`ecluse audit export` in the guest) are read for each.
 */
import { expect, it } from 'vitest';
import { AS_ECLUSE, HOME, MINUTE, type AuditEntry, type Guest, type JournalEntry } from '../helpers/appliance.js';
import { BROKEN, NEXT, VERSION } from '../helpers/appliance-sticks.js';

export interface SelfUpdateContext {
  guest: () => Guest;
  /** Plugs the stick and waits until it is mounted; its findmnt line (target, type, options). */
  plugAndMount: (stick: string, serial: string) => Promise<string>;
  /** The id of the bundle on a stick. */
  bundle: (stick: string) => string;
  /** The disk image of a stick. */
  stick: (name: string) => string;
  timed: <T>(what: string, f: () => Promise<T> | T) => Promise<T>;
}

export function selfUpdateScenarios({ guest, plugAndMount, bundle, stick, timed }: SelfUpdateContext): void {
  /** Where the installer's journal and the audit log stand before a self-update case: its entries come after. */
  const marks = async () => ({ seen: (await guest().updateJournal()).length, from: (await guest().audit()).length });
  const byKind = (events: AuditEntry[], kind: string) => events.find((e) => e.kind === kind);
  /** Plugs a stick, waits (timed as `what`) until the import of its bundle has ended, unplugs it; that status. */
  const importFrom = async (name: string, serial: string, what: string) => {
    await guest().vm.plug(name, stick(name), serial);
    const status = await timed(what, () =>
      guest().untilStatus('the import', (s) => s.last?.bundle === bundle(name), 10 * MINUTE),
    );
    await guest().vm.unplug(name);
    return status;
  };

  it(
    'is ready to update itself as shipped: the path unit watches, root pins the anchors, the policy admits the type',
    async () => {
      // As shipped: the path unit is enabled and watching. The test only makes the installer wait 240 s for READY
      // (software emulation) instead of 300 s.
      const shipped = await guest().vm.sh(
        'systemctl is-enabled ecluse-update.path; systemctl is-active ecluse-update.path',
      );
      expect(shipped.stdout.trim().split('\n')).toEqual(['enabled', 'active']);
      const setup = await guest().vm.sh(
        'mkdir -p /etc/systemd/system/ecluse-update.service.d && printf "[Service]\\nEnvironment=ECLUSE_UPDATE_READY_TIMEOUT=240\\n" ' +
          '>/etc/systemd/system/ecluse-update.service.d/test.conf && systemctl daemon-reload',
      );
      expect(setup, setup.stderr).toMatchObject({ code: 0 });
      // The operator's steps: root pins the site's anchors (what the installer checks against), and the site's
      // policy opts in to the type.
      const pin = await guest().vm.exec(['/usr/bin/ecluse', '--home', HOME, 'self-update', 'pin', '--json']);
      expect(pin, pin.stderr).toMatchObject({ code: 0 });
      const policy = await guest().vm.sh(
        `printf 'version: 1\\nrules:\\n  - name: everything\\n    artifacts: ["*"]\\n` +
          `    types: [vm-image, ecluse-package]\\n' >/tmp/policy.yaml && ` +
          `chmod 0644 /tmp/policy.yaml && ${AS_ECLUSE} --home ${HOME} policy apply /tmp/policy.yaml --json`,
      );
      expect(policy, policy.stderr).toMatchObject({ code: 0 });
    },
    5 * MINUTE,
  );

  it(
    'refuses a package root drops into the spool with no evidence: nothing installed, audited',
    async () => {
      const { seen, from } = await marks();
      const mnt = (await plugAndMount('rogue', 'ECLUSE0090')).split(' ')[0] as string;
      const drop = await guest().vm.sh(
        `s=$(sha256sum ${mnt}/rogue.deb | cut -d' ' -f1) && cp ${mnt}/rogue.deb /var/lib/ecluse-update/incoming/.$s && ` +
          `mv /var/lib/ecluse-update/incoming/.$s /var/lib/ecluse-update/incoming/$s.deb && echo $s`,
      );
      expect(drop, drop.stderr).toMatchObject({ code: 0 });
      const rogueSum = drop.stdout.trim();
      const refused = await timed('self-update: a package without evidence, refused', () =>
        guest().updateEvent(['update.refused', 'update.installing', 'update.installed'], seen),
      );
      expect(refused).toMatchObject({ ECLUSE_EVENT: 'update.refused', ECLUSE_PACKAGE: rogueSum });
      expect(refused.ECLUSE_CODE).toMatch(/^E_[A-Z_]+$/);
      expect(refused.MESSAGE).toMatch(/the root's check refused/);
      // Once audited (the installer's result is its last step), the package is in refused/ and nothing else moved.
      const refusedAudit = byKind(await guest().audited(['update.refused'], from), 'update.refused');
      expect(refusedAudit).toMatchObject({ outcome: 'refused', code: refused.ECLUSE_CODE, bundle_id: null });
      expect(await guest().installedVersion()).toBe(VERSION);
      const spool = await guest().vm.sh(
        'ls -A /var/lib/ecluse-update/incoming; echo --; ls -A /var/lib/ecluse-update/refused',
      );
      expect(spool.stdout.split('--')[0]?.trim()).toBe('');
      expect(spool.stdout.split('--')[1]?.trim().split('\n')).toContain(`${rogueSum}.deb`);
      await guest().vm.unplug('rogue');
    },
    15 * MINUTE,
  );

  it(
    'updates itself through a bundle: the next version imported, handed over, checked by root, installed and READY',
    async () => {
      const { seen, from } = await marks();
      const imported = await importFrom('upd-next', 'ECLUSE0091', 'self-update: the next version imported');
      expect(imported.last).toMatchObject({ outcome: 'accepted' });
      const done = await timed('self-update: hand-over to READY on the next version', () =>
        guest().updateEvent(['update.installed', 'update.failed', 'update.refused'], seen),
      );
      expect(done).toMatchObject({
        ECLUSE_EVENT: 'update.installed',
        ECLUSE_VERSION: NEXT,
        ECLUSE_PREVIOUS: VERSION,
      });
      expect((await guest().vm.exec(['/usr/bin/ecluse', '--version'])).stdout.trim()).toBe(NEXT);
      expect(await guest().unit('ecluse-daemon')).toMatchObject({ ActiveState: 'active', SubState: 'running' });
      const nextAudit = await guest().audited(['update.handed-over', 'update.installed'], from);
      expect(byKind(nextAudit, 'update.handed-over')).toMatchObject({ bundle_id: bundle('upd-next') });
      expect(byKind(nextAudit, 'update.installed')).toMatchObject({
        outcome: 'accepted',
        artifact: `ecluse@${NEXT}`,
        bundle_id: bundle('upd-next'),
      });
      // The evidence went with the install; the installed package is the one kept to roll back to.
      const after = await guest().vm.sh(
        'ls -A /var/lib/ecluse-update/incoming /var/lib/ecluse-update/installing; dpkg-deb -f /var/lib/ecluse-update/current.deb Version',
      );
      expect(after.stdout.trim().split('\n').pop()).toBe(NEXT);
      expect(after.stdout).not.toMatch(/[0-9a-f]{64}/);
    },
    15 * MINUTE,
  );

  it(
    'rolls back a version whose daemon never reports READY; each installer result audited once, the chain verifies',
    async () => {
      const { seen, from } = await marks();
      await importFrom('upd-broken', 'ECLUSE0092', 'self-update: the never-READY version imported');
      const rolledBack = await timed('self-update: a daemon never READY, rolled back', () =>
        guest().updateEvent(
          ['update.rolled-back', 'update.rollback-failed', 'update.installed', 'update.refused'],
          seen,
        ),
      );
      expect(rolledBack).toMatchObject({
        ECLUSE_EVENT: 'update.rolled-back',
        ECLUSE_VERSION: NEXT,
        ECLUSE_FAILED: BROKEN,
      });
      const failed = (await guest().updateJournal())
        .slice(seen)
        .find((e: JournalEntry) => e.ECLUSE_EVENT === 'update.failed');
      expect(failed).toMatchObject({ ECLUSE_CODE: 'E_UPDATE', ECLUSE_VERSION: BROKEN, ECLUSE_PREVIOUS: NEXT });
      expect(await guest().installedVersion()).toBe(NEXT);
      expect(await guest().unit('ecluse-daemon')).toMatchObject({ ActiveState: 'active', SubState: 'running' });
      const brokenAudit = await guest().audited(['update.handed-over', 'update.failed', 'update.rolled-back'], from);
      expect(byKind(brokenAudit, 'update.failed')).toMatchObject({
        outcome: 'fail',
        code: 'E_UPDATE',
        artifact: `ecluse@${BROKEN}`,
        bundle_id: bundle('upd-broken'),
      });
      expect(byKind(brokenAudit, 'update.rolled-back')).toMatchObject({
        code: 'E_UPDATE',
        artifact: `ecluse@${BROKEN}`,
      });
      // Each installer result was audited once, and the chain verifies.
      const all = await guest().audit();
      for (const kind of ['update.refused', 'update.installed', 'update.failed', 'update.rolled-back']) {
        expect(
          all.filter((e) => e.kind === kind),
          kind,
        ).toHaveLength(1);
      }
      const verify = await guest().vm.sh(`${AS_ECLUSE} --home ${HOME} audit verify --json`);
      expect(verify, verify.stderr).toMatchObject({ code: 0 });
      // The station still imports after all this: its status file is fresh and names no error.
      expect((await guest().statusFile())?.state).toMatch(/^(idle|waiting)$/);
    },
    15 * MINUTE,
  );
}
