/**
 * The blob splitter on real files: an image's carried stream, cut into chunks that straddle blob boundaries (and a
 * zero-byte blob), lands as one verified staging file per blob; a changed byte is E_DIGEST naming its blob before the
 * next blob is taken; a stream that ends early or runs long is refused; abort removes every file written.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EcluseError } from '../../sneakernet/errors.js';
import { BlobSplitter } from '../../verifier/registry/blob-splitter.js';
import { blobOf, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST } from '../helpers/oci-image.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-splitter-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const manifest = blobOf(Buffer.from('{"schemaVersion":2}'), OCI_MANIFEST);
const empty = blobOf(Buffer.alloc(0), OCI_CONFIG);
const layer = blobOf(crypto.randomBytes(10_000), OCI_LAYER);
const blobs = [manifest, empty, layer];
const stream = Buffer.concat(blobs.map((b) => b.bytes));

async function feed(s: BlobSplitter, bytes: Buffer, chunk: number): Promise<void> {
  for (let at = 0; at < bytes.length; at += chunk) await s.write(bytes.subarray(at, at + chunk));
}

async function refusal(p: Promise<unknown>): Promise<EcluseError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(EcluseError);
  return e as EcluseError;
}

describe('BlobSplitter', () => {
  it('stages each blob in a file of its own, verified, whatever the chunking', async () => {
    for (const chunk of [1, 7, 4096, stream.length]) {
      const sub = fs.mkdtempSync(path.join(dir, 'c-'));
      const s = new BlobSplitter(blobs, sub, 'app 1', 'app@1');
      await feed(s, stream, chunk);
      const staged = await s.finish();
      expect(staged.files.map((f) => f.digest)).toEqual(blobs.map((b) => b.digest));
      for (const [i, f] of staged.files.entries()) {
        expect(fs.readFileSync(f.file as string).equals((blobs[i] as (typeof blobs)[number]).bytes)).toBe(true);
      }
      expect(staged.documents.get(manifest.digest)?.equals(manifest.bytes)).toBe(true);
      expect(staged.documents.has(layer.digest)).toBe(false);
    }
  });

  it('refuses a changed byte with E_DIGEST naming the blob; abort removes what was written', async () => {
    const bad = Buffer.from(stream);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    const s = new BlobSplitter(blobs, dir, 'app 1', 'app@1');
    const e = await refusal(feed(s, bad, 4096));
    expect(e.code).toBe('E_DIGEST');
    expect(e.context).toMatchObject({ check: 'image-blob-digest', blob: layer.digest, artifact: 'app@1' });
    expect(e.message).toContain(`the blob ${layer.digest}`);
    await s.abort();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses a stream that runs past its blobs or ends before them', async () => {
    const long = new BlobSplitter(blobs, null, 'app 1', 'app@1');
    expect((await refusal(feed(long, Buffer.concat([stream, Buffer.from('x')]), 4096))).code).toBe('E_FORMAT');
    const short = new BlobSplitter(blobs, null, 'app 1', 'app@1');
    await feed(short, stream.subarray(0, stream.length - 1), 4096);
    expect((await refusal(short.finish())).code).toBe('E_FORMAT');
  });
});
