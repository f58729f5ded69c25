/**
 * Interrupted imports leave nothing behind, through the real CLI: SIGINT (Ctrl-C) or SIGTERM while an import is
 * staging removes its staging folder, audits `import.interrupted` with E_INTERRUPTED, exits 3 with one JSON object and
 * the `E_INTERRUPTED: ` line, and leaves store, catalog and accepted state as they were; the same media then imports.
 * A staging folder left by a SIGKILL is removed by the next import (audited), without `store check --repair`, while a
 * folder of an import still running is left alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditSince, expectFailureOutput, lastAuditSeq, snapshot, world, type World } from '../helpers/world.js';
import { spawnEcluse, stagedBytes, stagingFolders, waitUntil } from '../helpers/spawned.js';

const MiB = 1024 * 1024;
let w: World;
let media: string;

beforeAll(async () => {
  w = await world();
  media = w.path('media');
  await w.addImage('big', '1.0.0', 6 * MiB);
  await w.exportTo(media, ['--media-size', '2M']);
});
afterAll(() => w?.cleanup());

/** An import reading at 1 MiB/s (about 6 s), signalled once it has staged some bytes. */
async function importSignalled(home: string, signal: NodeJS.Signals) {
  const s = spawnEcluse(['import', media, '--read-rate', '1M', '--json'], home);
  await waitUntil('the import to stage its first bytes', () => stagedBytes(home) > 0, s);
  expect(stagingFolders(home)).toHaveLength(1);
  s.child.kill(signal);
  return s.done;
}

describe('an interrupted import', () => {
  it.each([
    ['SIGINT', 'SIGINT (Ctrl-C)'],
    ['SIGTERM', 'SIGTERM'],
  ] as const)('%s: staging removed, E_INTERRUPTED audited, exit 3, nothing changed', async (signal, named) => {
    const home = await w.newInside();
    const before = snapshot(home);
    const seq = lastAuditSeq(home);
    const r = await importSignalled(home, signal);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 3, signal: null });
    const json = expectFailureOutput(r, 'E_INTERRUPTED');
    const line = `import interrupted by ${named}: nothing was promoted and the staging folder was removed; run the import again`;
    expect(json.message).toBe(line);
    expect(r.stderr.trimEnd().split('\n').pop()).toBe(`E_INTERRUPTED: ${line}`);
    expect(stagingFolders(home)).toEqual([]);
    expect(snapshot(home)).toEqual(before);
    const audit = auditSince(home, seq);
    expect(audit.filter((a) => a.kind === 'import.interrupted')).toMatchObject([
      { outcome: 'info', code: 'E_INTERRUPTED', message: `E_INTERRUPTED: ${line}` },
    ]);
    expect(audit.filter((a) => a.kind === 'import.refused' || a.kind === 'import.accepted')).toEqual([]);

    // Nothing was consumed: the same media imports.
    const again = await w.importJson(media, home);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json).toMatchObject({ ok: true, images: [{ name: 'big', version: '1.0.0' }] });
  });

  it('SIGKILL leaves a staging folder; the next import removes it (audited) and imports', async () => {
    const home = await w.newInside();
    const s = spawnEcluse(['import', media, '--read-rate', '1M', '--json'], home);
    await waitUntil('the import to stage its first bytes', () => stagedBytes(home) > 0, s);
    s.child.kill('SIGKILL');
    expect((await s.done).signal).toBe('SIGKILL');
    const orphans = stagingFolders(home);
    expect(orphans).toHaveLength(1);
    expect(fs.readdirSync(orphans[0] as string)).not.toEqual([]);

    // A folder named for a process that is alive (this test runner) is another import still running: kept.
    const alive = path.join(home, 'store', 'staging', `import-${process.pid}-1-00000000`);
    fs.mkdirSync(alive, { mode: 0o700 });

    const seq = lastAuditSeq(home);
    const r = await w.importJson(media, home);
    expect(r.code, r.stderr).toBe(0);
    expect(stagingFolders(home)).toEqual([alive]);
    expect(auditSince(home, seq).filter((a) => a.kind === 'store.staging-removed')).toMatchObject([
      { outcome: 'info', message: 'removed 1 staging folder(s) left by an import whose process is gone' },
    ]);
    fs.rmdirSync(alive);
  });
});
