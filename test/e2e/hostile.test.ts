/**
 * One test per way a bundle can be wrong that refusals.test.ts, policy.test.ts and revocation.test.ts do not already
 * cover end to end. Each bundle is written by the real `ecluse export`, then made wrong by the hostile-bundle
 * generator (test/helpers/hostile.ts), often re-signed with real keys of the fixture site so that only the one check
 * under test can refuse it. Every refusal goes through `expectImportRefused`: exit 1, exactly one JSON object, the
 * code on stderr's last line, store/catalog/state byte-for-byte unchanged, one `import.refused` audit row; then the
 * one-line message is checked.
 *
 * Already covered elsewhere, not repeated here: a statement edited after signing (refusals: E_SIGNATURE), a signer of
 * another site's root alone (refusals: E_UNTRUSTED_SIGNER), a bundle for another site (refusals: E_WRONG_SITE), a
 * truncated volume and a volume with trailing bytes (refusals: E_SIZE), a flipped volume byte (refusals: E_DIGEST),
 * replay and sequence gap (refusals), policy and rollback (policy.test.ts), a revoked signer through a bundle made
 * with an old key folder and a revocation list of another root (revocation.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BLOCK,
  describeVolumeAsIs,
  editAndResign,
  editSignatureJson,
  fakeTimeEnv,
  fakeTimeProblem,
  hostileSite,
  importingWith,
  mkfifo,
  otherBundleId,
  parseSignature,
  resign,
  setTarHeaderSize,
  signatureBy,
  signatureFiles,
  statementBytes,
  statementOf,
  tarHeaderSize,
  volumesOf,
  writeCertificate,
  writeSignature,
  type HostileSite,
} from '../helpers/hostile.js';
import {
  appendBytes,
  bundleOn,
  ecluse,
  ecluseOk,
  expectFailureOutput,
  expectImportRefused,
  tmpDir,
  world,
  type RunResult,
  type World,
  mediaDir,
} from '../helpers/world.js';
import { LIMITS } from '../../sneakernet/limits.js';

const KiB = 1024;

const messageOf = (r: RunResult) => (r.json as { message: string }).message;
const short = (keyId: string) => `${keyId.slice(0, 12)}…`;

let site: HostileSite;
const worlds: World[] = [];

beforeAll(async () => {
  site = await hostileSite(tmpDir('ecluse-hostile-'));
});

afterAll(() => {
  for (const w of worlds) w.cleanup();
  site?.cleanup();
});

/** The recovery a refusal's line ends with when the export station must act (verifier/refusal.ts). */
const resend = (w: World, n: number) =>
  `; export it again outside: ecluse export --resend ${n} --site ${w.site} --to MEDIA`;
const replace = (w: World, n: number) =>
  `; export a replacement outside: ecluse export --replace ${n} --site ${w.site} --to MEDIA`;
/** Before the statement is verified its sequence is not known for certain: the command says where to read it. */
const UNKNOWN_N = ' (N: the bundle\'s sequence, shown by "ecluse inspect MEDIA")';
const resendUnknown = (w: World) =>
  `; export it again outside: ecluse export --resend N --site ${w.site} --to MEDIA${UNKNOWN_N}`;
const resignUnknown = (w: World) =>
  `; sign it again outside with enough trusted signers: ecluse export --resend N --site ${w.site} --to MEDIA --signer DIR --signer DIR${UNKNOWN_N}`;
const escapeRe = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function fresh(): Promise<World> {
  const w = await world({ keys: site.keys });
  worlds.push(w);
  return w;
}

/** A fresh world with one image exported (signed by alice unless told) to `<root>/media`. */
async function exported(o: { size?: number; exportArgs?: string[]; signers?: string[] } = {}) {
  const w = await fresh();
  await w.addImage('img', '1.0.0', o.size ?? 200 * KiB);
  const media = w.path('media');
  await w.exportTo(media, o.exportArgs ?? [], o.signers ? { signers: o.signers } : {});
  return { w, media, bundle: bundleOn(media) };
}

/** A second import home of the same site requiring `threshold` distinct signers. */
async function insideWithThreshold(w: World, threshold: number): Promise<string> {
  const home = w.path(`inside-threshold-${threshold}`);
  await ecluseOk(
    ['site', 'init', '--trust', site.keys.trust, '--site', w.site, '--threshold', String(threshold), '--json'],
    {
      home,
    },
  );
  return home;
}

describe('hostile signatures', () => {
  it('E_SIGNATURE: one byte of the signature flipped (base64 re-encoded, so still well-formed)', async () => {
    const { w, media, bundle } = await exported();
    const [sig] = signatureFiles(bundle);
    editSignatureJson(path.join(bundle.signaturesDir, sig!.name), (j) => {
      const raw = Buffer.from(j.dsseEnvelope.signatures[0]!.sig, 'base64');
      raw[100] = raw[100]! ^ 0x01;
      j.dsseEnvelope.signatures[0]!.sig = raw.toString('base64');
    });
    const r = await expectImportRefused(w, media, 'E_SIGNATURE');
    expect(messageOf(r)).toBe(
      `signature 1 of 1 (key ${short(site.alice.keyId)}, signer alice) does not verify over the statement${resendUnknown(w)}`,
    );
  });

  it("E_SIGNATURE: alice's valid signature over another statement swapped into the signature file", async () => {
    const { w, media, bundle } = await exported();
    const statement = statementOf(bundle);
    (statement.predicate as { expires: string }).expires = '2099-01-01T00:00:00Z';
    const other = await signatureBy(site.alice, Buffer.from(JSON.stringify(statement)));
    const [sig] = signatureFiles(bundle);
    editSignatureJson(path.join(bundle.signaturesDir, sig!.name), (j) => {
      j.dsseEnvelope.signatures[0]!.sig = parseSignature(other.bytes).dsseEnvelope.signatures[0]!.sig;
    });
    const r = await expectImportRefused(w, media, 'E_SIGNATURE');
    expect(messageOf(r)).toContain(`(key ${short(site.alice.keyId)}, signer alice) does not verify over the statement`);
  });

  it('E_SIGNATURE: two valid signatures, alice over the statement and bob over another one', async () => {
    const { w, media, bundle } = await exported();
    const statement = statementOf(bundle);
    (statement.predicate as { expires: string }).expires = '2099-01-01T00:00:00Z';
    writeSignature(bundle, await signatureBy(site.bob, Buffer.from(JSON.stringify(statement))));
    writeCertificate(bundle, site.bob);
    const r = await expectImportRefused(w, media, 'E_SIGNATURE');
    expect(messageOf(r)).toBe(`the signatures are over different statements${resendUnknown(w)}`);
  });

  it('E_THRESHOLD: threshold minus one (site requires 2, bundle signed by alice only)', async () => {
    const { w, media } = await exported();
    const home = await insideWithThreshold(w, 2);
    const r = await expectImportRefused(w, media, 'E_THRESHOLD', home);
    expect(messageOf(r)).toBe(`2 distinct trusted signers required, 1 found${resignUnknown(w)}`);
  });

  it("E_UNTRUSTED_SIGNER: threshold minus one where the missing signer is another site's (alice + mallory of 2)", async () => {
    // keys/verify.ts: when too few trusted signers remain and some signature was untrusted, the code is
    // E_UNTRUSTED_SIGNER (naming the untrusted one and the count), not E_THRESHOLD.
    const { w, media, bundle } = await exported();
    await resign(bundle, [site.alice, site.foreign]);
    const home = await insideWithThreshold(w, 2);
    const r = await expectImportRefused(w, media, 'E_UNTRUSTED_SIGNER', home);
    expect(messageOf(r)).toMatch(
      new RegExp(
        `made by key ${site.foreign.keyId.slice(0, 12)}… whose certificate was not issued by this site's root`,
      ),
    );
    expect(messageOf(r)).toContain('(2 distinct trusted signers required, 1 found)');
  });

  it('control: alice and bob meet a threshold of 2 (the fixture and the threshold home work)', async () => {
    const { w, media } = await exported({ signers: [site.keys.signer('alice'), site.keys.signer('bob')] });
    const home = await insideWithThreshold(w, 2);
    const r = await w.importJson(media, home);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, bundle: { signers: expect.arrayContaining(['alice', 'bob']) } });
  });

  it("E_FORMAT: duplicate signer — alice's signature file copied under another key id's name (name ≠ hint)", async () => {
    const { w, media, bundle } = await exported();
    const [sig] = signatureFiles(bundle);
    writeSignature(bundle, sig!, `${site.bob.keyId}.sigstore.json`);
    writeCertificate(bundle, site.bob);
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(
      `signature file ${site.bob.keyId}.sigstore.json is signed by key ${site.alice.keyId.slice(0, 12)}… and should be named ${site.alice.keyId}.sigstore.json`,
    );
  });

  it("E_SIGNATURE: duplicate signer — alice's signature relabelled as bob's (hint and name bob's) at threshold 2", async () => {
    // The nearest a medium can come to "the same key twice": file names are key ids, so one key has one file.
    const { w, media, bundle } = await exported();
    const [sig] = signatureFiles(bundle);
    const copy = writeSignature(bundle, sig!, `${site.bob.keyId}.sigstore.json`);
    editSignatureJson(copy, (j) => {
      j.verificationMaterial.publicKey.hint = site.bob.keyId;
      j.dsseEnvelope.signatures[0]!.keyid = site.bob.keyId;
    });
    writeCertificate(bundle, site.bob);
    const home = await insideWithThreshold(w, 2);
    const r = await expectImportRefused(w, media, 'E_SIGNATURE', home);
    expect(messageOf(r)).toContain(`(key ${short(site.bob.keyId)}, signer bob) does not verify over the statement`);
  });

  it('duplicate signer at the export station: the same key given twice (another folder) is E_USAGE, no bundle', async () => {
    const w = await fresh();
    await w.addImage('img', '1', 4 * KiB);
    const again = w.path('alice-again');
    fs.cpSync(site.keys.signer('alice'), again, { recursive: true });
    const media = w.path('media');
    const r = await ecluse(
      [
        'export',
        '--to',
        mediaDir(media),
        '--site',
        w.site,
        '--signer',
        site.keys.signer('alice'),
        '--signer',
        again,
        '--json',
      ],
      { home: w.outside },
    );
    expect(r.code, r.stderr).toBe(2);
    expect(expectFailureOutput(r, 'E_USAGE').message).toBe('the same signer key was given twice');
    expect(
      fs.existsSync(path.join(media, 'ecluse', 'bundles')) ? fs.readdirSync(path.join(media, 'ecluse', 'bundles')) : [],
    ).toEqual([]);
  });

  it('E_UNTRUSTED_SIGNER: unknown key hint — a valid signature by a key whose certificate is not on the media', async () => {
    const { w, media, bundle } = await exported();
    await resign(bundle, [site.stranger], { certificates: false });
    writeCertificate(bundle, site.alice); // a certificate with no signature is allowed and ignored
    const r = await expectImportRefused(w, media, 'E_UNTRUSTED_SIGNER');
    expect(messageOf(r)).toBe(
      `signature 1 of 1 was made by key ${short(site.stranger.keyId)} whose certificate is not on the media (no certificates/<key-id>.pem) (1 distinct trusted signer required, 0 found)${resignUnknown(w)}`,
    );
  });

  it("E_UNTRUSTED_SIGNER: unknown key hint — alice's signature with its hint (and file name) changed to an unknown key id", async () => {
    const { w, media, bundle } = await exported();
    const unknown = 'f'.repeat(64);
    const [sig] = signatureFiles(bundle);
    editSignatureJson(
      path.join(bundle.signaturesDir, sig!.name),
      (j) => {
        j.verificationMaterial.publicKey.hint = unknown;
      },
      path.join(bundle.signaturesDir, `${unknown}.sigstore.json`),
    );
    const r = await expectImportRefused(w, media, 'E_UNTRUSTED_SIGNER');
    expect(messageOf(r)).toContain(`made by key ${short(unknown)} whose certificate is not on the media`);
  });

  it('E_UNTRUSTED_SIGNER: hint pointing at a key of another role (root certificate as the signer certificate, signed by the root key)', async () => {
    const { w, media, bundle } = await exported();
    await resign(bundle, [site.root]);
    const r = await expectImportRefused(w, media, 'E_UNTRUSTED_SIGNER');
    expect(messageOf(r)).toContain(
      `made by key ${short(site.root.keyId)} whose certificate is a CA certificate, not a signer's`,
    );
  });

  it('E_UNTRUSTED_SIGNER: expired signer certificate (the message says when it expired)', async () => {
    const { w, media, bundle } = await exported();
    await resign(bundle, [site.expired]);
    const r = await expectImportRefused(w, media, 'E_UNTRUSTED_SIGNER');
    expect(messageOf(r)).toContain(
      `made by key ${short(site.expired.keyId)} whose certificate expired on ${site.expiredOn.toISOString()}`,
    );
  });

  it('E_REVOKED: a signature by a revoked signer (the revocation list travels with the bundle)', async () => {
    const { w, media, bundle } = await exported();
    expect(fs.existsSync(path.join(bundle.root, 'trust', 'revocations.sigstore.json'))).toBe(true);
    await resign(bundle, [site.revoked]);
    const r = await expectImportRefused(w, media, 'E_REVOKED');
    expect(messageOf(r)).toMatch(
      new RegExp(
        `^signature 1 of 1 was made by key ${site.revoked.keyId.slice(0, 12)}…, signer carol, revoked on \\S+ \\(hostile fixture: key stolen\\)${escapeRe(resignUnknown(w))}$`,
      ),
    );
  });
});

describe('hostile clocks (libfaketime)', () => {
  const problem = fakeTimeProblem();
  if (problem) console.warn(`skipping the libfaketime tests: ${problem}`);

  it.skipIf(problem !== null)(
    'E_EXPIRED: an expired statement imported with the clock wound back (time floor = newest accepted bundle)',
    async () => {
      const w = await fresh();
      await w.addImage('img', '1', 64 * KiB);
      const first = await w.exportTo(w.path('media-1'));
      const accepted = await w.importJson(w.path('media-1'));
      expect(accepted.code, accepted.stderr).toBe(0);
      const created1 = (first.json as { bundle: { created: string } }).bundle.created;

      // Bundle 2 made under a clock two days behind, valid for one day: by the real clock it expired yesterday.
      await w.addImage('img', '2', 64 * KiB);
      const second = await ecluseOk(
        [
          'export',
          '--to',
          mediaDir(w.path('media-2')),
          '--site',
          w.site,
          '--signer',
          site.keys.signer('alice'),
          '--expires',
          '1d',
          '--json',
        ],
        { home: w.outside, env: fakeTimeEnv('-2d') },
      );
      const b2 = (second.json as { bundle: { created: string; expires: string; sequence: number } }).bundle;
      expect(b2.sequence).toBe(2);
      expect(Math.abs(Date.parse(b2.created) - (Date.now() - 2 * 86_400_000))).toBeLessThan(10 * 60_000);

      // Clock wound back 3 days (the brief's case), and 36 hours: at -36h the bundle would be inside its validity
      // period by that clock (created -48h, expires -24h), so only the time floor refuses it.
      for (const back of ['-3d', '-36h']) {
        const r = await expectImportRefused(
          importingWith(w, { env: fakeTimeEnv(back) }),
          w.path('media-2'),
          'E_EXPIRED',
        );
        expect(messageOf(r), back).toBe(
          `the statement expired at ${b2.expires} (time floor ${new Date(created1).toISOString()})${replace(w, 2)}`,
        );
      }
    },
  );

  it.skipIf(problem !== null)('E_NOT_YET_VALID: a statement created 2 days in the future', async () => {
    const w = await fresh();
    await w.addImage('img', '1', 64 * KiB);
    const media = w.path('media');
    const out = await ecluseOk(
      ['export', '--to', mediaDir(media), '--site', w.site, '--signer', site.keys.signer('alice'), '--json'],
      { home: w.outside, env: fakeTimeEnv('+2d') },
    );
    const created = (out.json as { bundle: { created: string } }).bundle.created;
    const r = await expectImportRefused(w, media, 'E_NOT_YET_VALID');
    expect(messageOf(r)).toMatch(
      new RegExp(`^the statement was created at ${created}, after this station's clock \\d{4}-\\d\\d-\\d\\dT`),
    );
  });
});

describe('hostile volumes', () => {
  it('E_DIGEST: vol-0001.tar swapped in from another bundle of the same size', async () => {
    const { w, media, bundle } = await exported({ size: 100 * KiB });
    await w.addImage('other', '1.0.0', 100 * KiB); // same size, other bytes: a volume of exactly the same size
    const otherMedia = w.path('media-other');
    await w.exportTo(otherMedia);
    const other = bundleOn(otherMedia);
    expect(fs.statSync(other.volume(1)).size).toBe(fs.statSync(bundle.volume(1)).size);
    fs.copyFileSync(other.volume(1), bundle.volume(1));
    const r = await expectImportRefused(w, media, 'E_DIGEST');
    expect(messageOf(r)).toBe(
      `volume vol-0001.tar does not match the sha256 in the signed statement (read from ${bundle.volumesDir})${resend(w, 1)}`,
    );
  });

  it('E_DIGEST: a tar header whose size field claims more than the statement (checksum fixed up)', async () => {
    const { w, media, bundle } = await exported();
    const size = tarHeaderSize(bundle.volume(1));
    setTarHeaderSize(bundle.volume(1), 0, size + 64 * BLOCK);
    const r = await expectImportRefused(w, media, 'E_DIGEST');
    expect(messageOf(r)).toBe(
      `volume vol-0001.tar does not match the sha256 in the signed statement (read from ${bundle.volumesDir})${resend(w, 1)}`,
    );
  });

  it('E_SIZE: the same oversized header claim in a volume whose sha256 was re-signed by alice', async () => {
    // The bytes are now the signed ones, so the structural code wins (FORMAT.md 6, precedence inside step 7).
    const { w, media, bundle } = await exported();
    const size = tarHeaderSize(bundle.volume(1));
    setTarHeaderSize(bundle.volume(1), 0, size + 64 * BLOCK);
    await editAndResign(bundle, [site.alice], (s) => describeVolumeAsIs(s, bundle, 1));
    const r = await expectImportRefused(w, media, 'E_SIZE');
    const entry = volumesOf(statementOf(bundle))[0]!.entries[0]!;
    expect(messageOf(r)).toBe(
      `vol-0001.tar: entry ${entry.path} claims ${size + 64 * BLOCK} bytes, the statement says ${size}${replace(w, 1)}`,
    );
  });

  it('E_FORMAT: trailing data that is signed too (statement re-signed with the longer size and its sha256)', async () => {
    // The unsigned variants (truncated, trailing bytes: E_SIZE) are in refusals.test.ts.
    const { w, media, bundle } = await exported();
    appendBytes(bundle.volume(1), Buffer.alloc(2 * BLOCK, 0x41));
    await editAndResign(bundle, [site.alice], (s) => describeVolumeAsIs(s, bundle, 1));
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toMatch(/^the statement is inconsistent: vol-0001\.tar is \d+ bytes, its entries make \d+$/);
  });
});

describe('hostile statements, validly signed by alice', () => {
  it('E_FORMAT: malformed JSON', async () => {
    const { w, media, bundle } = await exported();
    const payload = Buffer.concat([statementBytes(bundle).subarray(0, -1), Buffer.from(',}')]);
    await resign(bundle, [site.alice], { payload });
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toMatch(/^the statement is not valid JSON: /);
  });

  it('E_FORMAT: a statement over LIMITS.statementBytes (valid JSON padded with spaces)', async () => {
    const { w, media, bundle } = await exported();
    const good = statementBytes(bundle);
    const payload = Buffer.concat([good, Buffer.alloc(LIMITS.statementBytes + 1 - good.length, 0x20)]);
    expect(payload.length).toBe(LIMITS.statementBytes + 1);
    await resign(bundle, [site.alice], { payload });
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(
      `signature file ${site.alice.keyId}.sigstore.json signs a statement larger than ${LIMITS.statementBytes} bytes`,
    );
  });

  it('E_FORMAT: a statement nested deeper than LIMITS.jsonDepth', async () => {
    const { w, media, bundle } = await exported();
    await editAndResign(bundle, [site.alice], (s) => {
      let deep: unknown = 'x';
      for (let i = 0; i < LIMITS.jsonDepth; i++) deep = [deep];
      (s.predicate as Record<string, unknown>).deep = deep;
    });
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(`the statement nests deeper than ${LIMITS.jsonDepth} levels`);
  });

  it('E_FORMAT: a statement with an unknown field', async () => {
    const { w, media, bundle } = await exported();
    await editAndResign(bundle, [site.alice], (s) => {
      (s.predicate as Record<string, unknown>).trustMe = true;
    });
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toMatch(/^the statement is malformed: predicate.*trustMe/);
  });

  it('E_FORMAT: the statement names another bundle id than its folder', async () => {
    const { w, media, bundle } = await exported();
    const moved = path.join(path.dirname(bundle.root), otherBundleId(bundle.id));
    fs.renameSync(bundle.root, moved);
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(`the folder ${path.basename(moved)} holds the statement of bundle ${bundle.id}`);
  });
});

describe('hostile media layout', () => {
  it('E_FORMAT: a symbolic link to /etc/passwd under a listed volume name', async () => {
    const { w, media, bundle } = await exported();
    fs.rmSync(bundle.volume(1));
    fs.symlinkSync('/etc/passwd', bundle.volume(1));
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(`volume vol-0001.tar is a symbolic link${resend(w, 1)}`);
  });

  /**
   * Regression: openMediaFile once opened media files without O_NONBLOCK, so open(2) on a FIFO waited for a writer
   * that never came and the import hung before it could see the file was not regular. A time limit turns a hang into
   * a clear failure.
   */
  async function expectRefusedNotHung(w: World, media: string, code: string): Promise<RunResult> {
    const timeoutMs = 20_000;
    try {
      return await expectImportRefused(importingWith(w, { timeoutMs }), media, code);
    } catch (e) {
      const err = e as { killed?: boolean; signal?: string };
      if (err.killed || err.signal) {
        throw new Error(
          `ecluse import did not finish within ${timeoutMs / 1000}s and was killed (${err.signal}): it blocks in open() on the FIFO`,
        );
      }
      throw e;
    }
  }

  it('E_FORMAT: a FIFO in place of a volume is refused, not waited on', async () => {
    const { w, media, bundle } = await exported();
    fs.rmSync(bundle.volume(1));
    mkfifo(bundle.volume(1));
    const r = await expectRefusedNotHung(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(`volume vol-0001.tar is not a regular file${resend(w, 1)}`);
  });

  it('E_FORMAT: a FIFO in place of a signature file is refused, not waited on', async () => {
    // The same open() reads signatures and certificates (sneakernet/bundle-files.ts readSmallFile): an unsigned stick
    // with one FIFO stops the import station before any signature is checked.
    const { w, media, bundle } = await exported();
    const [sig] = signatureFiles(bundle);
    fs.rmSync(path.join(bundle.signaturesDir, sig!.name));
    mkfifo(path.join(bundle.signaturesDir, sig!.name));
    const r = await expectRefusedNotHung(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(`signature ${sig!.name} is not a regular file${resendUnknown(w)}`);
  });

  it('E_UNEXPECTED_FILE: an unlisted file directly in the bundle folder', async () => {
    const { w, media, bundle } = await exported();
    fs.writeFileSync(path.join(bundle.root, 'notes.txt'), 'run me\n');
    const r = await expectImportRefused(w, media, 'E_UNEXPECTED_FILE');
    expect(messageOf(r)).toBe(
      `bundle ${bundle.id} holds notes.txt, which format v1 does not define${resendUnknown(w)}`,
    );
  });
});
