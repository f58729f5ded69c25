/**
 * Signed chunk lists (docs/FORMAT.md 4.11), end to end through the CLI: the export station signs the SHA-256 of each
 * 4 MiB chunk of every image into the statement; the import station verifies chunk by chunk and refuses the first bad
 * one naming the image, the chunk, its byte range and the volume(s) its bytes came from. Made wrong one way each:
 * a byte flipped in the first, a middle and the last (short) chunk, in a chunk split across two volumes, a signed
 * list that does not match the bytes (with and without verifyAllDigests), a list the wrong length. Old-style
 * statements (no list, no md5) still import; `--no-chunks` leaves lists out; a resend writes the statement as it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editAndResign, hostileSite, statementBytes, statementOf, type HostileSite } from '../helpers/hostile.js';
import {
  bundleOn,
  copyMedia,
  ecluse,
  ecluseOk,
  expectFailureOutput,
  expectImportRefused,
  flipByte,
  md5,
  sha256,
  tmpDir,
  world,
  type World,
} from '../helpers/world.js';

const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;
/** Three chunks: 4 MiB, 4 MiB and a short last one. */
const SIZE = 2 * CHUNK + 123_457;

interface EntryJson {
  artifact: number;
  offset: number;
  size: number;
}
interface ArtifactJson {
  size: number;
  sha256: string;
  md5?: string;
  chunks?: { size: number; sha256: string };
}
const artifactsOf = (s: Record<string, unknown>) => (s.predicate as { artifacts: ArtifactJson[] }).artifacts;
const volumesOf = (s: Record<string, unknown>) =>
  (s.predicate as { volumes: Array<{ name: string; entries: EntryJson[] }> }).volumes;

const VERIFY_ALL = 'version: 1\nverifyAllDigests: true\nrules:\n  - name: all\n    artifacts: ["*"]\n';

/** The hex SHA-256 of each `size`-byte chunk of `bytes`, back to back. */
function chunkList(bytes: Buffer, size: number): string {
  const out: string[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(sha256(bytes.subarray(at, at + size)));
  return out.join('');
}

/** Volume file and byte offset in it of byte `x` of artifact 0, from the statement's entries (ustar: 512 B headers). */
function whereIs(statement: Record<string, unknown>, x: number): { volume: number; offset: number } {
  for (const [v, vol] of volumesOf(statement).entries()) {
    let at = 0;
    for (const e of vol.entries) {
      at += 512;
      if (e.artifact === 0 && x >= e.offset && x < e.offset + e.size)
        return { volume: v + 1, offset: at + x - e.offset };
      at += Math.ceil(e.size / 512) * 512;
    }
  }
  throw new Error(`byte ${x} is in no entry`);
}

let site: HostileSite;
let w: World;
let img: Buffer;
/** One export kept pristine; each test damages a copy. */
let media: string;
let multi: string;

beforeAll(async () => {
  site = await hostileSite(tmpDir('ecluse-chunks-'));
  w = await world({ keys: site.keys });
  img = (await w.addImage('img', '1.0.0', SIZE)).bytes;
  media = w.path('media');
  await w.exportTo(media);
  // The same image over volumes of at most 3 MiB: chunks 2 and 3 are each split across two volumes.
  multi = w.path('media-multi');
  await w.exportTo(multi, ['--replace', '1', '--media-size', '3M']);
}, 300_000);

afterAll(() => {
  w?.cleanup();
  site?.cleanup();
});

let copies = 0;
const copy = (from: string) => copyMedia(from, w.path(`copy-${++copies}`));

async function refusedMessage(at: string, code = 'E_DIGEST', home = w.inside): Promise<string> {
  const r = await expectImportRefused(w, at, code, home);
  return (r.json as { message: string }).message;
}

describe('signed chunk lists (format 4.11)', () => {
  it('the export signs the SHA-256 of each 4 MiB chunk; the import verifies them and takes sha256 as signed', async () => {
    const [a] = artifactsOf(statementOf(bundleOn(media)));
    expect(a?.chunks).toEqual({ size: CHUNK, sha256: chunkList(img, CHUNK) });
    const home = await w.newInside('inside-good');
    const r = await w.importJson(media, home);
    expect(r.code, r.stderr).toBe(0);
    expect((r.json as { images: Array<{ sha256: string; checksum: string }> }).images[0]).toMatchObject({
      sha256: sha256(img),
      checksum: md5(img),
    });
    const checks = (r.json as { checks: Array<{ check: string; detail: string }> }).checks;
    expect(checks.find((c) => c.check === 'digests')?.detail).toMatch(
      /SHA-256 of every chunk computed; the whole sha256, md5, sha512 as signed/,
    );
  });

  it.each([
    ['the first chunk', 100, 1, '0–4194303'],
    ['a middle chunk', CHUNK + 5, 2, '4194304–8388607'],
    ['the last (short) chunk', SIZE - 1, 3, `8388608–${SIZE - 1}`],
  ])('a byte flipped in %s is refused naming that chunk and its bytes', async (_what, x, chunk, range) => {
    const at = copy(media);
    const where = whereIs(statementOf(bundleOn(at)), x);
    flipByte(bundleOn(at).volume(where.volume), where.offset);
    // The damaged volume first (what the operator acts on), then the first bad chunk that showed it.
    expect(await refusedMessage(at)).toMatch(
      new RegExp(
        `^volume vol-0001\\.tar does not match the sha256 in the signed statement \\(read from [^)]+\\); ` +
          `the first bad chunk: img 1\\.0\\.0: chunk ${chunk} of 3 \\(bytes ${range}, read from vol-0001\\.tar\\); `,
      ),
    );
  });

  it('a multi-volume image split mid-chunk imports, and a flipped byte names the chunk and both its volumes', async () => {
    const s = statementOf(bundleOn(multi));
    expect(volumesOf(s).length).toBeGreaterThanOrEqual(3);
    expect(artifactsOf(s)[0]?.chunks?.sha256).toBe(chunkList(img, CHUNK));
    const home = await w.newInside('inside-multi');
    const ok = await w.importJson(multi, home);
    expect(ok.code, ok.stderr).toBe(0);

    // Byte 4 MiB + 3 MiB lies in chunk 2, whose bytes (4–8 MiB) two volumes share.
    const at = copy(multi);
    const where = whereIs(s, CHUNK + 3 * MiB);
    flipByte(bundleOn(at).volume(where.volume), where.offset);
    const holding = volumesOf(s)
      .filter((v) => v.entries.some((e) => e.offset < 2 * CHUNK && e.offset + e.size > CHUNK))
      .map((v) => v.name);
    expect(holding.length).toBe(2);
    // Of the two volumes holding the chunk, the one that is not the signed one is named.
    expect(await refusedMessage(at)).toMatch(
      new RegExp(
        `^volume ${volumesOf(s)[where.volume - 1]?.name.replace('.', '\\.')} does not match the sha256 in the signed statement \\(read from [^)]+\\); ` +
          `the first bad chunk: img 1\\.0\\.0: chunk 2 of 3 \\(bytes 4194304–8388607, read from ${holding.join(' and ')}\\); `,
      ),
    );
  });

  it('a signed list that does not match the bytes is refused naming the chunk, with or without verifyAllDigests', async () => {
    const at = copy(media);
    const list = chunkList(img, CHUNK);
    const wrong = list.slice(0, 64) + sha256('not chunk 2') + list.slice(128);
    await editAndResign(bundleOn(at), [site.alice], (s) => {
      (artifactsOf(s)[0] as ArtifactJson).chunks = { size: CHUNK, sha256: wrong };
    });
    expect(await refusedMessage(at)).toMatch(/^img 1\.0\.0: chunk 2 of 3 /);
    const strict = await w.newInside('inside-strict');
    const policy = w.path('verify-all.yaml');
    fs.writeFileSync(policy, VERIFY_ALL);
    await ecluseOk(['policy', 'apply', policy, '--json'], { home: strict });
    expect(await refusedMessage(at, 'E_DIGEST', strict)).toMatch(/^img 1\.0\.0: chunk 2 of 3 /);
    // The bundle as signed imports under verifyAllDigests (lists and every digest checked).
    const r = await w.importJson(media, strict);
    expect(r.code, r.stderr).toBe(0);
  });

  it.each([
    ['truncated by one digest', (l: string) => l.slice(0, -64)],
    ['one digest too long', (l: string) => l + sha256('extra')],
  ])('a list %s is refused before any volume is read (E_FORMAT)', async (_what, change) => {
    const at = copy(media);
    await editAndResign(bundleOn(at), [site.alice], (s) => {
      const a = artifactsOf(s)[0] as ArtifactJson;
      a.chunks = { size: CHUNK, sha256: change(a.chunks?.sha256 ?? '') };
    });
    expect(await refusedMessage(at, 'E_FORMAT')).toMatch(/chunk list of img 1\.0\.0 holds \d+ digests; .* make 3/);
  });

  it.each([
    ['a tar header byte (its checksum fixed)', 'header'],
    ['a tar header byte (its checksum left wrong)', 'raw-header'],
    ['a padding byte', 'padding'],
  ])(
    'with chunks, the volume is not hashed but %s changed is still refused (E_DIGEST naming the volume)',
    async (_what, kind) => {
      const at = copy(media);
      const file = bundleOn(at).volume(1);
      const bytes = fs.readFileSync(file);
      if (kind === 'padding') {
        bytes[512 + SIZE] = 1; // SIZE is not a multiple of 512: the first padding byte
      } else {
        // Another mtime: a digit other than the one there (the export's own mtime may already hold a '7').
        bytes.write(bytes[136 + 9] === 0x37 ? '6' : '7', 136 + 9, 'ascii');
        if (kind === 'header') {
          bytes.fill(0x20, 148, 156);
          let sum = 0;
          for (const x of bytes.subarray(0, 512)) sum += x;
          bytes.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
        }
      }
      fs.writeFileSync(file, bytes);
      expect(await refusedMessage(at)).toMatch(
        /^volume vol-0001\.tar does not match the sha256 in the signed statement/,
      );
    },
  );

  it('an old-style statement (no chunk list, no md5) still imports, every digest it lacks computed inside', async () => {
    const at = copy(media);
    await editAndResign(bundleOn(at), [site.alice], (s) => {
      delete (artifactsOf(s)[0] as ArtifactJson).chunks;
      delete (artifactsOf(s)[0] as ArtifactJson).md5;
    });
    const home = await w.newInside('inside-old');
    const r = await w.importJson(at, home);
    expect(r.code, r.stderr).toBe(0);
    expect((r.json as { images: Array<{ checksum: string }> }).images[0]?.checksum).toBe(md5(img));
  });

  it('a flipped byte names its chunk also when the statement lacks md5 (chunks verified beside the whole hash)', async () => {
    const at = copy(media);
    await editAndResign(bundleOn(at), [site.alice], (s) => {
      delete (artifactsOf(s)[0] as ArtifactJson).md5;
    });
    const where = whereIs(statementOf(bundleOn(at)), 7);
    flipByte(bundleOn(at).volume(where.volume), where.offset);
    expect(await refusedMessage(at)).toMatch(
      /^volume vol-0001\.tar does not match .*; the first bad chunk: img 1\.0\.0: chunk 1 of 3 \(bytes 0–4194303/,
    );
  });

  it('--no-chunks leaves the lists out (a plain statement) and the bundle imports', async () => {
    const w2 = await world({ keys: site.keys });
    try {
      const bytes = (await w2.addImage('img', '2.0.0', 5 * MiB)).bytes;
      const m = w2.path('media');
      await w2.exportTo(m, ['--no-chunks']);
      const [a] = artifactsOf(statementOf(bundleOn(m)));
      expect(a).not.toHaveProperty('chunks');
      expect(a?.md5).toBe(md5(bytes));
      const r = await w2.importJson(m);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      w2.cleanup();
    }
  });

  it('a resend writes the signed statement as it was, lists included; --no-chunks does not go with --resend', async () => {
    const first = statementBytes(bundleOn(multi));
    const again = w.path('media-resend');
    await w.exportTo(again, ['--resend', '1']);
    expect(statementBytes(bundleOn(again)).equals(first)).toBe(true);
    const r = await ecluse(
      ['export', '--resend', '1', '--site', w.site, '--to', w.path('media-x'), '--no-chunks', '--json'],
      { home: w.outside },
    );
    expect(r.code).toBe(2);
    expect(expectFailureOutput(r, 'E_USAGE').message).toMatch(/--no-chunks does not go with --resend/);
    expect(fs.existsSync(path.join(w.path('media-x'), 'ecluse'))).toBe(false);
  });
});
