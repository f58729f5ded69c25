/**
 * One test per way a bundle's contents can be wrong that refusals.test.ts does not already cover end to end: its
 * volumes, its statement (validly signed by alice) and the layout of its files on the media; the signatures and the
 * clock are in hostile.test.ts, which says how the bundles are made wrong and how a refusal is checked (the shared
 * setup is test/helpers/hostile-world.ts).
 *
 * Already covered elsewhere, not repeated here: a truncated volume and a volume with trailing bytes (refusals:
 * E_SIZE), a flipped volume byte (refusals: E_DIGEST).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BLOCK,
  describeVolumeAsIs,
  editAndResign,
  importingWith,
  mkfifo,
  otherBundleId,
  resign,
  setTarHeaderSize,
  signatureFiles,
  statementBytes,
  statementOf,
  tarHeaderSize,
  volumesOf,
} from '../helpers/hostile.js';
import { hostileWorlds, KiB, messageOf, replace, resend, resendUnknown } from '../helpers/hostile-world.js';
import { appendBytes, bundleOn, expectImportRefused, type RunResult, type World } from '../helpers/world.js';
import { LIMITS } from '../../sneakernet/limits.js';

const h = hostileWorlds();

describe('hostile volumes', () => {
  it('E_DIGEST: vol-0001.tar swapped in from another bundle of the same size', async () => {
    const { w, media, bundle } = await h.exported({ size: 100 * KiB });
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
    const { w, media, bundle } = await h.exported();
    const size = tarHeaderSize(bundle.volume(1));
    setTarHeaderSize(bundle.volume(1), 0, size + 64 * BLOCK);
    const r = await expectImportRefused(w, media, 'E_DIGEST');
    expect(messageOf(r)).toBe(
      `volume vol-0001.tar does not match the sha256 in the signed statement (read from ${bundle.volumesDir})${resend(w, 1)}`,
    );
  });

  it('E_SIZE: the same oversized header claim in a volume whose sha256 was re-signed by alice', async () => {
    // The bytes are now the signed ones, so the structural code wins (FORMAT.md 6, precedence inside step 7).
    const { w, media, bundle } = await h.exported();
    const size = tarHeaderSize(bundle.volume(1));
    setTarHeaderSize(bundle.volume(1), 0, size + 64 * BLOCK);
    await editAndResign(bundle, [h.site().alice], (s) => describeVolumeAsIs(s, bundle, 1));
    const r = await expectImportRefused(w, media, 'E_SIZE');
    const entry = volumesOf(statementOf(bundle))[0]!.entries[0]!;
    expect(messageOf(r)).toBe(
      `vol-0001.tar: entry ${entry.path} claims ${size + 64 * BLOCK} bytes, the statement says ${size}${replace(w, 1)}`,
    );
  });

  it('E_FORMAT: trailing data that is signed too (statement re-signed with the longer size and its sha256)', async () => {
    // The unsigned variants (truncated, trailing bytes: E_SIZE) are in refusals.test.ts.
    const { w, media, bundle } = await h.exported();
    appendBytes(bundle.volume(1), Buffer.alloc(2 * BLOCK, 0x41));
    await editAndResign(bundle, [h.site().alice], (s) => describeVolumeAsIs(s, bundle, 1));
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toMatch(/^the statement is inconsistent: vol-0001\.tar is \d+ bytes, its entries make \d+$/);
  });
});

describe('hostile statements, validly signed by alice', () => {
  it('E_FORMAT: malformed JSON', async () => {
    const { w, media, bundle } = await h.exported();
    const payload = Buffer.concat([statementBytes(bundle).subarray(0, -1), Buffer.from(',}')]);
    await resign(bundle, [h.site().alice], { payload });
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toMatch(/^the statement is not valid JSON: /);
  });

  it('E_FORMAT: a statement over LIMITS.statementBytes (valid JSON padded with spaces)', async () => {
    const { w, media, bundle } = await h.exported();
    const good = statementBytes(bundle);
    const payload = Buffer.concat([good, Buffer.alloc(LIMITS.statementBytes + 1 - good.length, 0x20)]);
    expect(payload.length).toBe(LIMITS.statementBytes + 1);
    await resign(bundle, [h.site().alice], { payload });
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(
      `signature file ${h.site().alice.keyId}.sigstore.json signs a statement larger than ${LIMITS.statementBytes} bytes`,
    );
  });

  it('E_FORMAT: a statement nested deeper than LIMITS.jsonDepth', async () => {
    const { w, media, bundle } = await h.exported();
    await editAndResign(bundle, [h.site().alice], (s) => {
      let deep: unknown = 'x';
      for (let i = 0; i < LIMITS.jsonDepth; i++) deep = [deep];
      (s.predicate as Record<string, unknown>).deep = deep;
    });
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(`the statement nests deeper than ${LIMITS.jsonDepth} levels`);
  });

  it('E_FORMAT: a statement with an unknown field', async () => {
    const { w, media, bundle } = await h.exported();
    await editAndResign(bundle, [h.site().alice], (s) => {
      (s.predicate as Record<string, unknown>).trustMe = true;
    });
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toMatch(/^the statement is malformed: predicate.*trustMe/);
  });

  it('E_FORMAT: the statement names another bundle id than its folder', async () => {
    const { w, media, bundle } = await h.exported();
    const moved = path.join(path.dirname(bundle.root), otherBundleId(bundle.id));
    fs.renameSync(bundle.root, moved);
    const r = await expectImportRefused(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(`the folder ${path.basename(moved)} holds the statement of bundle ${bundle.id}`);
  });
});

describe('hostile media layout', () => {
  it('E_FORMAT: a symbolic link to /etc/passwd under a listed volume name', async () => {
    const { w, media, bundle } = await h.exported();
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
    const { w, media, bundle } = await h.exported();
    fs.rmSync(bundle.volume(1));
    mkfifo(bundle.volume(1));
    const r = await expectRefusedNotHung(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(`volume vol-0001.tar is not a regular file${resend(w, 1)}`);
  });

  it('E_FORMAT: a FIFO in place of a signature file is refused, not waited on', async () => {
    // The same open() reads signatures and certificates (sneakernet/bundle-files.ts readSmallFile): an unsigned stick
    // with one FIFO stops the import station before any signature is checked.
    const { w, media, bundle } = await h.exported();
    const [sig] = signatureFiles(bundle);
    fs.rmSync(path.join(bundle.signaturesDir, sig!.name));
    mkfifo(path.join(bundle.signaturesDir, sig!.name));
    const r = await expectRefusedNotHung(w, media, 'E_FORMAT');
    expect(messageOf(r)).toBe(`signature ${sig!.name} is not a regular file${resendUnknown(w)}`);
  });

  it('E_UNEXPECTED_FILE: an unlisted file directly in the bundle folder', async () => {
    const { w, media, bundle } = await h.exported();
    fs.writeFileSync(path.join(bundle.root, 'notes.txt'), 'run me\n');
    const r = await expectImportRefused(w, media, 'E_UNEXPECTED_FILE');
    expect(messageOf(r)).toBe(
      `bundle ${bundle.id} holds notes.txt, which format v1 does not define${resendUnknown(w)}`,
    );
  });
});
