/**
 * Issue 14, status: `ecluse status` names the last import the station's database records, whoever made it (the
 * daemon only knows its own), and never says the same thing twice ("idle: idle;", "done, done").
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ecluseOk, world, type World } from '../helpers/world.js';
import { said } from '../../cli/commands/status.js';

let w: World | undefined;
afterAll(() => w?.cleanup());

describe('ecluse status', () => {
  it('names the last import recorded in the database, also when the CLI made it', async () => {
    w = await world();
    const media: string[] = [];
    for (let n = 1; n <= 3; n++) {
      await w.addImage(`img-${n}`, '1', 10_000);
      media.push(w.path(`m${n}`));
      await w.exportTo(media[n - 1] as string);
    }
    await ecluseOk(['import', media[0] as string], { home: w.inside });
    // What a daemon that imported #1 itself, an hour ago, left in its status file; it is still running (this pid).
    const daemonDir = path.join(w.inside, 'daemon');
    fs.mkdirSync(daemonDir, { recursive: true });
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    fs.writeFileSync(
      path.join(daemonDir, 'status.json'),
      JSON.stringify({
        state: 'idle',
        message: 'idle; last: bundle x #1 imported: img-1 1',
        updatedAt: hourAgo,
        pid: process.pid,
        mediaRoots: [],
        progress: null,
        waiting: [],
        media: [],
        last: {
          outcome: 'accepted',
          at: hourAgo,
          bundle: null,
          code: null,
          message: 'bundle x #1 imported: img-1 1',
          media: null,
        },
      }),
    );
    await ecluseOk(['import', media[1] as string], { home: w.inside });
    await ecluseOk(['import', media[2] as string], { home: w.inside });
    const r = await ecluseOk(['status'], { home: w.inside });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^idle; last: bundle \S+ #3 imported: img-3 1$/);
    expect(lines[1]).toMatch(/^ {2}last accepted at \d{4}-\d\d-\d\dT[\d:.]+Z: bundle \S+ #3 imported: img-3 1$/);
    expect(r.stdout).not.toMatch(/idle: idle|done, done|#1 imported/);
    const j = await ecluseOk(['status', '--json'], { home: w.inside });
    expect(j.json).toMatchObject({ ok: true, status: { state: 'idle', last: { outcome: 'accepted' } } });

    // No daemon at all: stopped, and still the last import from the database.
    fs.rmSync(daemonDir, { recursive: true });
    const stopped = await ecluseOk(['status'], { home: w.inside });
    expect(stopped.stdout.trimEnd().split('\n')).toEqual([
      'stopped: the import daemon is not running',
      expect.stringMatching(/^ {2}last accepted at .*: bundle \S+ #3 imported: img-3 1$/),
    ]);
  });

  it('says a state once', () => {
    expect(said('idle', 'idle; last: bundle a #2 imported')).toBe('idle; last: bundle a #2 imported');
    expect(said('done', 'the media may be removed')).toBe('done: the media may be removed');
    expect(said('done', 'done: the media may be removed')).toBe('done: the media may be removed');
    expect(said('refused', 'refused')).toBe('refused');
    expect(said('stopped', 'the import daemon is not running')).toBe('stopped: the import daemon is not running');
  });
});
