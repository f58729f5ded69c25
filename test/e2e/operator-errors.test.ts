/**
 * Issue 14, errors and exit codes: what an operator causes or can fix is never E_INTERNAL. Each case runs the real
 * CLI and asserts the exact line on stderr, the code and the exit status (the code's category decides it).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI,
  REPO,
  bundleOn,
  ecluse,
  ecluseOk,
  flipByte,
  makeKeys,
  tmpDir,
  world,
  type Keys,
} from '../helpers/world.js';

const execFileP = promisify(execFile);
let keys: Keys;
let root: string;
const roots: string[] = [];

beforeAll(async () => {
  root = tmpDir('ecluse-operr-');
  roots.push(root);
  keys = await makeKeys(path.join(root, 'keys'));
});
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

async function fresh() {
  const w = await world({ keys });
  roots.push(w.root);
  return w;
}

/** The last line of stderr: the one line an operator reads. */
const lastLine = (stderr: string) => stderr.trimEnd().split('\n').pop() ?? '';

describe('serve', () => {
  it('E_ADDRESS_IN_USE (exit 3) naming the address and what to do, when the port is taken', async () => {
    const w = await fresh();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await ecluse(['serve', '--listen', `127.0.0.1:${port}`], { home: w.inside, timeoutMs: 30_000 });
      expect(r.code).toBe(3);
      expect(lastLine(r.stderr)).toBe(
        `E_ADDRESS_IN_USE: 127.0.0.1:${port} is already in use by another program: stop it, or give another port with --listen`,
      );
    } finally {
      blocker.close();
    }
  });

  it('a port out of range is bad usage (exit 2), not E_INTERNAL', async () => {
    const w = await fresh();
    const r = await ecluse(['serve', '--listen', '127.0.0.1:99999'], { home: w.inside, timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(lastLine(r.stderr)).toBe(
      'E_USAGE: --listen wants HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9292 (got 127.0.0.1:99999)',
    );
  });

  it('import from a media folder that does not exist says so (exit 3), not "is not a folder"', async () => {
    const w = await fresh();
    const missing = w.path('no-stick-here');
    const r = await ecluse(['import', missing], { home: w.inside, timeoutMs: 30_000 });
    expect(r.code).toBe(3);
    expect(lastLine(r.stderr)).toBe(
      `E_NOT_FOUND: ${missing} does not exist: is the media mounted there? Give the folder where it is mounted`,
    );
  });
});

describe('the station database', () => {
  it('a file that is not a database: E_DATABASE (exit 3) with its path and advice', async () => {
    const w = await fresh();
    const db = path.join(w.inside, 'ecluse.sqlite');
    for (const f of ['-wal', '-shm']) fs.rmSync(db + f, { force: true });
    fs.writeFileSync(db, Buffer.alloc(8192, 0x41));
    for (const args of [['status'], ['audit', 'verify'], ['policy', 'show']]) {
      const r = await ecluse(args, { home: w.inside });
      if (args[0] === 'status') continue; // status reads the daemon's file, not the database
      expect(r.code, args.join(' ')).toBe(3);
      expect(lastLine(r.stderr)).toMatch(
        new RegExp(
          `^E_DATABASE: ${db.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is damaged \\(file is not a database\\): stop the station, keep the file for analysis, and restore the home from its last backup$`,
        ),
      );
    }
  });

  it('audit verify on a database with damaged pages fails (E_DATABASE), it does not say "intact"', async () => {
    const w = await fresh();
    const db = path.join(w.inside, 'ecluse.sqlite');
    await ecluseOk(['audit', 'checkpoint'], { home: w.inside });
    await ecluseOk(['audit', 'verify'], { home: w.inside });
    // Fold the WAL into the file, then damage a page of a table's b-tree (not the header).
    const { default: Database } = await import('better-sqlite3');
    const h = new Database(db);
    h.pragma('wal_checkpoint(TRUNCATE)');
    const pages = (h.pragma('page_count', { simple: true }) as number) - 1;
    const pageSize = h.pragma('page_size', { simple: true }) as number;
    h.close();
    for (let p = 1; p <= pages; p++) for (const at of [0, 1, 5, 7]) flipByte(db, p * pageSize + at);
    const r = await ecluse(['audit', 'verify', '--json'], { home: w.inside });
    expect(r.code).toBe(3);
    expect(r.json).toMatchObject({ ok: false, code: 'E_DATABASE' });
    expect(lastLine(r.stderr)).toMatch(/^E_DATABASE: .*ecluse\.sqlite (is damaged|cannot be)/);
    expect(r.stdout).not.toMatch(/intact/);
  });
});

describe('files an operator names', () => {
  it('relay add DIR: a folder is bad usage, named as such (not E_IO: EISDIR)', async () => {
    const home = path.join(root, 'out-dir');
    const r = await ecluse(['relay', 'add', root, '--name', 'x', '--version', '1'], { home });
    expect(r.code).toBe(2);
    expect(lastLine(r.stderr)).toBe(`E_USAGE: ${root} is a folder: give the image file itself`);
  });

  it('relay add of a missing file: E_NOT_FOUND (exit 3)', async () => {
    const r = await ecluse(['relay', 'add', path.join(root, 'nope.qcow2'), '--name', 'x', '--version', '1'], {
      home: path.join(root, 'out-missing'),
    });
    expect(r.code).toBe(3);
    expect(lastLine(r.stderr)).toBe(
      `E_NOT_FOUND: no such image file: ${path.join(root, 'nope.qcow2')}; check the path`,
    );
  });

  it('an unreadable file is a permission problem (E_IO naming the user), not E_NOT_FOUND', async () => {
    // root reads any file whatever its mode: the command runs as nobody (setpriv) on a file only root may read.
    const dir = fs.mkdtempSync('/tmp/ecluse-perm-');
    roots.push(dir);
    fs.chmodSync(dir, 0o777);
    const file = path.join(dir, 'secret.raw');
    fs.writeFileSync(file, Buffer.alloc(4096, 1), { mode: 0o600 });
    const home = path.join(dir, 'home');
    const env = { ...process.env, ECLUSE_HOME: home, HOME: dir };
    let code = 0;
    let stderr = '';
    try {
      await execFileP(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          CLI,
          'relay',
          'add',
          file,
          '--name',
          'x',
          '--version',
          '1',
        ],
        { env, cwd: REPO },
      );
    } catch (e) {
      const err = e as { code: number; stderr: string };
      code = err.code;
      stderr = err.stderr;
    }
    expect(code).toBe(3);
    expect(lastLine(stderr)).toBe(
      `E_IO: cannot read ${file}: permission denied for user nobody; make it readable to that user or run as its owner`,
    );
  });

  it('--home naming a file: status fails (E_USAGE, exit 2), it does not say "stopped"', async () => {
    const file = path.join(root, 'not-a-home');
    fs.writeFileSync(file, 'x');
    const r = await ecluse(['--home', file, 'status']);
    expect(r.code).toBe(2);
    expect(lastLine(r.stderr)).toBe(
      `E_USAGE: --home ${file} is a file, not a folder: give the station's state folder (e.g. /var/lib/ecluse)`,
    );
    expect(r.stdout).not.toMatch(/stopped/);
  });
});

describe('a --home that is not there', () => {
  it('status names the missing station folder (E_NOT_FOUND, exit 3), it does not say "stopped"', async () => {
    const missing = path.join(root, 'no-such-home');
    const r = await ecluse(['--home', missing, 'status']);
    expect(r.code).toBe(3);
    expect(lastLine(r.stderr)).toBe(
      `E_NOT_FOUND: no import station at ${missing}: the folder does not exist; give the station's state folder with --home (e.g. /var/lib/ecluse), or set one up there with ecluse site init`,
    );
    expect(r.stdout).not.toMatch(/stopped/);
  });
});

describe('usage errors, one shape', () => {
  it.each([
    [['relay', 'add'], "E_USAGE: missing required argument 'FILE' (see: ecluse relay add --help)"],
    [
      ['relay', 'add', 'x.qcow2'],
      "E_USAGE: required option '--name <NAME>' not specified (see: ecluse relay add --help)",
    ],
    [['status', '--bogus'], "E_USAGE: unknown option '--bogus' (see: ecluse status --help)"],
    [['bogus'], "E_USAGE: unknown command 'bogus' (see: ecluse --help)"],
  ])('%j', async (args, line) => {
    const r = await ecluse(args, { home: path.join(root, 'usage-home') });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd()).toBe(line);
    const j = await ecluse([...args, '--json'], { home: path.join(root, 'usage-home') });
    expect(j.code).toBe(2);
    expect(j.json).toMatchObject({ ok: false, code: 'E_USAGE' });
  });
});

describe('bundles, exports and policy', () => {
  it('E_TOO_MANY_BUNDLES lists prefixes that --bundle then accepts; an empty --bundle matches none', async () => {
    const w = await fresh();
    const media = w.path('media');
    await w.addImage('one', '1', 20_000);
    await w.exportTo(media);
    await w.addImage('two', '1', 20_000);
    await w.exportTo(media);
    const ids = fs.readdirSync(path.join(media, 'ecluse', 'bundles')).filter((n) => !n.startsWith('.'));
    expect(ids).toHaveLength(2);
    const r = await ecluse(['verify', media], { home: w.inside });
    expect(r.code).toBe(1);
    const line = lastLine(r.stderr);
    expect(line).toMatch(
      new RegExp(`^E_TOO_MANY_BUNDLES: 2 bundles on ${media}; choose one with --bundle ID \\(any unique prefix\\): `),
    );
    const offered = line.slice(line.lastIndexOf(': ') + 2).split(', ');
    expect(offered).toHaveLength(2);
    // Each prefix picks its bundle: importing them in the order they were written accepts both.
    const written = (p: string) =>
      fs.statSync(path.join(media, 'ecluse', 'bundles', ids.find((i) => i.startsWith(p)) as string)).mtimeMs;
    const bySequence = offered.map((p) => ({ p })).sort((a, b) => written(a.p) - written(b.p));
    for (const { p } of bySequence) {
      expect(p.length).toBeGreaterThanOrEqual(8);
      const ok = await ecluse(['import', media, '--bundle', p, '--json'], { home: w.inside });
      expect(ok.json, ok.stderr).toMatchObject({ ok: true });
    }
    const ambiguous = await ecluse(['verify', media, '--bundle', ''], { home: w.inside });
    expect(ambiguous.code).toBe(1);
    expect(lastLine(ambiguous.stderr)).toBe(`E_NO_BUNDLE: bundle  is not on ${media}`);
  });

  it('corruption in the last volume names the volume and the folder it was read from, then the chunk that showed it', async () => {
    const w = await fresh();
    const media = w.path('media-split');
    await w.addImage('img-b', '1', 400 * 1024);
    await w.exportTo(media, ['--media-size', '256K']);
    const b = bundleOn(media);
    expect(b.volumes.length).toBeGreaterThan(1);
    const last = b.volume(b.volumes.length);
    flipByte(last, 512 + 100); // inside the last piece of img-b's bytes
    const r = await ecluse(['import', media], { home: w.inside });
    expect(r.code, r.stderr).toBe(1);
    expect(lastLine(r.stderr)).toBe(
      `E_DIGEST: volume ${path.basename(last)} does not match the sha256 in the signed statement (read from ${b.volumesDir}); ` +
        `the first bad chunk: img-b 1: chunk 1 of 1 (bytes 0–409599, read from ${b.volumes.join(' and ')}); ` +
        `export it again outside: ecluse export --resend 1 --site ${w.site} --to MEDIA`,
    );
  });

  it('export with nothing new: E_NOTHING_TO_EXPORT exits 4 (nothing failed)', async () => {
    const w = await fresh();
    await w.addImage('once', '1', 10_000);
    await w.exportTo(w.path('m1'));
    fs.mkdirSync(w.path('m2'));
    const r = await ecluse(['export', '--to', w.path('m2'), '--site', w.site, '--signer', keys.signer('alice')], {
      home: w.outside,
    });
    expect(r.code).toBe(4);
    expect(lastLine(r.stderr)).toMatch(/^E_NOTHING_TO_EXPORT: /);
  });

  it('audit export onto an earlier export refuses and keeps the checkpoint --previous needs', async () => {
    const w = await fresh();
    const dir = w.path('audit-1');
    await ecluseOk(['audit', 'export', '--to', dir], { home: w.inside });
    const before = fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8');
    const r = await ecluse(['audit', 'export', '--to', dir], { home: w.inside });
    expect(r.code).toBe(2);
    expect(lastLine(r.stderr)).toMatch(
      new RegExp(
        `^E_USAGE: ${dir} already holds an audit export \\(checkpoint\\.json\\): its checkpoint is what the next "verify-export --previous" needs; export to a new folder, e\\.g\\. ${dir}-\\d{4}-\\d\\d-\\d\\d$`,
      ),
    );
    expect(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8')).toBe(before);
  });

  it('policy vendors match without regard to case: vendors ["Debian"] admits --vendor debian', async () => {
    const w = await fresh();
    const file = w.path('policy.yaml');
    fs.writeFileSync(
      file,
      'version: 1\nrules:\n  - name: debian\n    artifacts: ["debian-*"]\n    vendors: ["Debian"]\n',
    );
    await ecluseOk(['policy', 'apply', file], { home: w.inside });
    const image = w.path('d.raw');
    fs.writeFileSync(image, Buffer.alloc(10_000, 7));
    await ecluseOk(['relay', 'add', image, '--name', 'debian-13', '--version', '1', '--vendor', 'debian'], {
      home: w.outside,
    });
    const media = w.path('media-vendor');
    await w.exportTo(media);
    const r = await w.importJson(media);
    expect(r.json, r.stderr).toMatchObject({ ok: true });
  });
});

describe('passphrases for new keys', () => {
  it('a passphrase shorter than 12 characters is refused with the reason; --no-passphrase still works', async () => {
    const out = path.join(root, 'short-keys');
    const r = await ecluse(['keys', 'init', '--out', out, '--signers', 'alice'], {
      env: { ECLUSE_PASSPHRASE: 'a' },
    });
    expect(r.code).toBe(3);
    expect(lastLine(r.stderr)).toBe(
      'E_PASSPHRASE: the passphrase for the new site keys (ECLUSE_PASSPHRASE) has 1 character(s); use at least 12: a lost or copied key file is protected only by its passphrase against offline guessing',
    );
    expect(fs.existsSync(path.join(out, 'root'))).toBe(false);
    const open = await ecluse([
      'keys',
      'init',
      '--out',
      path.join(root, 'open-keys'),
      '--signers',
      'alice',
      '--no-passphrase',
    ]);
    expect(open.code, open.stderr).toBe(0);
  });
});
