/**
 * End-to-end world for the CLI journeys: the real `ecluse` (dist/ecluse/main.js, built by `npm run build` before the
 * slow project runs), spawned with execFile (no shell), keys made by `keys init`, an outside (export) home and an
 * inside (import) home set up with `site init`, and helpers to add images, export, import, damage media and take a
 * byte-for-byte snapshot of the import station's store and state.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { expect } from 'vitest';

const execFileP = promisify(execFile);

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** The program as it ships: the bundle `npm run build` writes (scripts/bundle.ts). */
export const CLI = path.join(REPO, 'dist', 'ecluse', 'main.js');
/** tsc's output, module by module: for tests about the source's import graph. */
export const UNBUNDLED_CLI = path.join(REPO, 'dist', 'cli', 'main.js');
export const PASSPHRASE = 'e2e-passphrase';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON when it is exactly one JSON value, else undefined. */
  json: unknown;
}

export interface RunOptions {
  home?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** The program to run (default {@link CLI}). */
  cli?: string;
}

/** A folder standing in for a mounted medium: `export --to DIR` wants DIR to exist, as a mounted stick does. */
export function mediaDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function parseJson(stdout: string): unknown {
  const text = stdout.trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Where `site init` run as root (as the tests are) pins the self-update anchors (docs/FORMAT.md 4.10): beside the home
 * it names, never the machine's /etc/ecluse/self-update.
 */
export function selfUpdateAnchorsFor(args: readonly string[], home: string | undefined): string {
  const i = args.indexOf('--home');
  const h = i >= 0 ? args[i + 1] : home;
  return h ? `${path.resolve(h)}.self-update` : path.join(os.tmpdir(), `ecluse-self-update-${process.pid}`);
}

/** Runs `ecluse ARGS...` and never throws on a non-zero exit: the exit status is part of what is tested. */
export async function ecluse(args: string[], o: RunOptions = {}): Promise<RunResult> {
  const cli = o.cli ?? CLI;
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` before the slow tests`);
  const env: NodeJS.ProcessEnv = { ...process.env, ECLUSE_PASSPHRASE: PASSPHRASE, ...o.env };
  delete env.ECLUSE_HOME;
  if (o.home !== undefined) env.ECLUSE_HOME = o.home;
  env.ECLUSE_SELF_UPDATE_ANCHORS ??= selfUpdateAnchorsFor(args, o.home);
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [cli, ...args], {
      env,
      cwd: REPO,
      maxBuffer: 64 * 1024 * 1024,
      timeout: o.timeoutMs ?? 120_000,
    });
    return { code: 0, stdout, stderr, json: parseJson(stdout) };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & {
      stdout?: string;
      stderr?: string;
      code?: number | string;
      signal?: string;
    };
    if (typeof err.code !== 'number') throw e; // not an exit status: the spawn itself failed, or a signal
    const stdout = err.stdout ?? '';
    return { code: err.code, stdout, stderr: err.stderr ?? '', json: parseJson(stdout) };
  }
}

/** Same as `ecluse`, but a non-zero exit is a test failure with the command's stderr in the message. */
export async function ecluseOk(args: string[], o: RunOptions = {}): Promise<RunResult> {
  const r = await ecluse(args, o);
  if (r.code !== 0) throw new Error(`ecluse ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()} ${r.stdout.trim()}`);
  return r;
}

export function tmpDir(prefix = 'ecluse-e2e-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
export const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
export const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------------------------
// Keys

export interface Keys {
  dir: string;
  trust: string;
  signer(name: string): string;
}

/** `keys init` (about a second: build once per file and share). */
export async function makeKeys(dir: string, signers: string[] = ['alice', 'bob']): Promise<Keys> {
  await ecluseOk(['keys', 'init', '--out', dir, '--signers', signers.join(','), '--json']);
  return { dir, trust: path.join(dir, 'trust'), signer: (name) => path.join(dir, 'signers', name) };
}

// ---------------------------------------------------------------------------------------------------------------
// Snapshot of the import station: rows of images, stations, bundles (not audit) and the files of the store.

export interface Snapshot {
  images: unknown[];
  stations: unknown[];
  bundles: unknown[];
  /** `<relative path> <sha256>` of every file under store/images, sorted. */
  files: string[];
  /** Whatever is left under store/staging (an import that was refused must leave nothing). */
  staging: string[];
}

function listFiles(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .map((d) => path.relative(root, path.join(d.parentPath, d.name)))
    .sort();
}

function withDb<T>(home: string, f: (db: Database.Database) => T): T {
  const db = new Database(path.join(home, 'ecluse.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return f(db);
  } finally {
    db.close();
  }
}

export function snapshot(home: string): Snapshot {
  return withDb(home, (db) => {
    const rows = (table: string, key: string) => db.prepare(`SELECT * FROM ${table} ORDER BY ${key}`).all();
    const images = path.join(home, 'store', 'images');
    return {
      images: rows('images', 'id'),
      stations: rows('stations', 'station'),
      bundles: rows('bundles', 'bundle_id'),
      files: listFiles(images)
        .filter((f) => fs.statSync(path.join(images, f)).isFile())
        .map((f) => `${f} ${sha256(fs.readFileSync(path.join(images, f)))}`),
      staging: listFiles(path.join(home, 'store', 'staging')),
    };
  });
}

export interface AuditRow {
  seq: number;
  kind: string;
  outcome: string;
  code: string | null;
  message: string;
  bundle_id: string | null;
  /** JSON text, '{}' when there is nothing to add. */
  details: string;
}

/** Audit rows with seq greater than `after`. */
export function auditSince(home: string, after = 0): AuditRow[] {
  return withDb(home, (db) => db.prepare('SELECT * FROM audit WHERE seq > ? ORDER BY seq').all(after) as AuditRow[]);
}

export function lastAuditSeq(home: string): number {
  return withDb(home, (db) => (db.prepare('SELECT coalesce(max(seq), 0) AS n FROM audit').get() as { n: number }).n);
}

// ---------------------------------------------------------------------------------------------------------------
// Media: where a bundle's files are, and small ways to damage them.

export interface BundleOnMedia {
  media: string;
  id: string;
  root: string;
  volumesDir: string;
  signaturesDir: string;
  volumes: string[];
  volume(n: number): string;
}

export function bundleOn(media: string): BundleOnMedia {
  const dir = path.join(media, 'ecluse', 'bundles');
  const ids = fs.readdirSync(dir).filter((n) => !n.startsWith('.'));
  if (ids.length !== 1) throw new Error(`expected one bundle on ${media}, found ${ids.join(', ') || 'none'}`);
  const id = ids[0] as string;
  const root = path.join(dir, id);
  const volumesDir = path.join(root, 'volumes');
  return {
    media,
    id,
    root,
    volumesDir,
    signaturesDir: path.join(root, 'signatures'),
    volumes: fs.readdirSync(volumesDir).sort(),
    volume: (n) => path.join(volumesDir, `vol-${String(n).padStart(4, '0')}.tar`),
  };
}

/** Copies a media folder (to damage the copy and keep the original). */
export function copyMedia(from: string, to: string): string {
  fs.cpSync(from, to, { recursive: true });
  return to;
}

export function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    if (fs.readSync(fd, b, 0, 1, offset) !== 1) throw new Error(`${file} has no byte at ${offset}`);
    b[0] = (b[0] as number) ^ 0xff;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

export function truncateBy(file: string, bytes: number): void {
  fs.truncateSync(file, fs.statSync(file).size - bytes);
}

export function appendBytes(file: string, bytes: Buffer): void {
  fs.appendFileSync(file, bytes);
}

/** Rewrites the DSSE payload (the statement) of every signature file, keeping the signatures as they were. */
export function editStatement(bundle: BundleOnMedia, edit: (statement: Record<string, unknown>) => void): void {
  for (const name of fs.readdirSync(bundle.signaturesDir)) {
    const file = path.join(bundle.signaturesDir, name);
    const sig = JSON.parse(fs.readFileSync(file, 'utf8')) as { dsseEnvelope: { payload: string } };
    const statement = JSON.parse(Buffer.from(sig.dsseEnvelope.payload, 'base64').toString('utf8')) as Record<
      string,
      unknown
    >;
    edit(statement);
    sig.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement), 'utf8').toString('base64');
    fs.writeFileSync(file, JSON.stringify(sig));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The world: keys, an outside home, an inside home.

export interface AddedImage {
  name: string;
  version: string;
  file: string;
  bytes: Buffer;
}

export interface World {
  root: string;
  keys: Keys;
  site: string;
  outside: string;
  inside: string;
  images: AddedImage[];
  /** `relay add` of `size` random bytes written to a file. */
  addImage(name: string, version: string, size: number): Promise<AddedImage>;
  /** `export --to media --site SITE --signer alice` plus `extraArgs` (which may add signers or replace the site). */
  exportTo(media: string, extraArgs?: string[], o?: { signers?: string[] }): Promise<RunResult>;
  /** `import MEDIA --json` into the inside home (or `home`). */
  importJson(media: string, home?: string): Promise<RunResult>;
  /** A new import home for the same site and trust, with `site init` run. */
  newInside(name?: string, site?: string): Promise<string>;
  path(...parts: string[]): string;
  cleanup(): void;
}

export interface WorldOptions {
  /** Reuse keys made by `makeKeys` (key generation costs about a second). */
  keys?: Keys;
  site?: string;
}

export async function world(o: WorldOptions = {}): Promise<World> {
  const root = tmpDir();
  const keys = o.keys ?? (await makeKeys(path.join(root, 'keys')));
  const site = o.site ?? 'site-alpha';
  let insides = 0;
  const w: World = {
    root,
    keys,
    site,
    outside: path.join(root, 'outside'),
    inside: '',
    images: [],
    path: (...parts) => path.join(root, ...parts),
    async addImage(name, version, size) {
      const file = path.join(root, `${name}-${version}.raw`);
      const bytes = randomBytes(size);
      fs.writeFileSync(file, bytes);
      await ecluseOk(['relay', 'add', file, '--name', name, '--version', version, '--disk-format', 'raw', '--json'], {
        home: w.outside,
      });
      const added = { name, version, file, bytes };
      w.images.push(added);
      return added;
    },
    async exportTo(media, extraArgs = [], eo = {}) {
      mediaDir(media);
      for (const [i, a] of extraArgs.entries()) if (a === '--to') mediaDir(extraArgs[i + 1] as string);
      const signers = (eo.signers ?? [keys.signer('alice')]).flatMap((s) => ['--signer', s]);
      const site = extraArgs.includes('--site') ? [] : ['--site', w.site];
      return ecluseOk(['export', '--to', media, ...site, ...signers, ...extraArgs, '--json'], { home: w.outside });
    },
    importJson: (media, home) => ecluse(['import', media, '--json'], { home: home ?? w.inside }),
    async newInside(name, siteId) {
      const home = path.join(root, name ?? `inside-${++insides}`);
      await ecluseOk(['site', 'init', '--trust', keys.trust, '--site', siteId ?? site, '--json'], { home });
      return home;
    },
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
  w.inside = await w.newInside('inside');
  return w;
}

// ---------------------------------------------------------------------------------------------------------------
// The refusal contract

/**
 * Runs `import MEDIA --json` into `home` and checks the whole refusal contract: exit status, exactly one JSON object
 * `{ok:false, code, message}` on stdout, `CODE: ` on stderr's last line, store and state unchanged, and an
 * `import.refused` audit row with the code. Returns the result for further checks on the message.
 */
export async function expectImportRefused(w: World, media: string, code: string, home = w.inside): Promise<RunResult> {
  const before = snapshot(home);
  const seq = lastAuditSeq(home);
  const r = await w.importJson(media, home);
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 1 });
  expectFailureOutput(r, code);
  expect(snapshot(home)).toEqual(before);
  const refused = auditSince(home, seq).filter((a) => a.kind === 'import.refused');
  expect(refused).toHaveLength(1);
  expect(refused[0]).toMatchObject({ outcome: 'refused', code });
  return r;
}

/** stdout is exactly one JSON line `{ok:false, code, message}` (`check` may name the check); stderr ends in `CODE: `. */
export function expectFailureOutput(r: RunResult, code: string): { ok: false; code: string; message: string } {
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  expect(lines, `stdout: ${r.stdout}`).toHaveLength(1);
  const json = JSON.parse(lines[0] as string) as Record<string, unknown>;
  expect(json).toMatchObject({ ok: false, code, message: expect.any(String) });
  expect(Object.keys(json).filter((k) => !['ok', 'code', 'message', 'check'].includes(k))).toEqual([]);
  const last = r.stderr.trimEnd().split('\n').pop() ?? '';
  expect(last.startsWith(`${code}: `), `stderr: ${r.stderr}`).toBe(true);
  return json as { ok: false; code: string; message: string };
}
