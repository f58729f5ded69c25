/**
 * Room in the store (verifier/space.ts), against the real filesystem's statfs: a bundle is refused before a byte moves
 * when its artifacts and the margin do not fit, with the exact numbers in the message; "disk full" is recognised in
 * every spelling; and a refusal whose audit cannot be written for lack of room still reaches the operator.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EcluseError } from '../../sneakernet/errors.js';
import { formatBytes } from '../../sneakernet/units.js';
import { auditUnlessFull, checkStoreRoom, freeBytes, isNoSpace, STORE_MARGIN_BYTES } from '../../verifier/space.js';
import { makeArtifact, makeStatement, rmDir, tmpDir } from '../sneakernet/fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await tmpDir('ecluse-space-');
});
afterAll(() => rmDir(dir));

const statementOf = (...sizes: number[]) =>
  makeStatement(
    sizes.map((size, i) => ({ ...makeArtifact(i, Buffer.alloc(0)), size })),
    [],
  );

describe('checkStoreRoom', () => {
  it('passes when the artifacts and the margin fit, saying both numbers', async () => {
    const r = await checkStoreRoom(statementOf(1024, 2048), dir);
    expect(r).toMatchObject({ check: 'space', outcome: 'pass' });
    expect(r.detail).toMatch(
      new RegExp(`^the bundle needs ${formatBytes(3072 + STORE_MARGIN_BYTES)}, the store has .+ free$`),
    );
  });

  it('refuses (E_NO_SPACE, check space) when they do not, with the need, the free space and the folder', async () => {
    const free = await freeBytes(dir);
    const e = await checkStoreRoom(statementOf(free, free), dir).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(EcluseError);
    const err = e as EcluseError;
    expect(err.code).toBe('E_NO_SPACE');
    expect(err.context).toMatchObject({ check: 'space', needed: 2 * free + STORE_MARGIN_BYTES });
    expect(err.message).toMatch(
      new RegExp(
        `^the bundle needs ${formatBytes(2 * free + STORE_MARGIN_BYTES).replace('.', '\\.')}, the store has .+ free in ${dir} \\(the need counts 1\\.0 MiB for the catalog and the audit log\\): make room there`,
      ),
    );
  });
});

describe('a full disk', () => {
  it.each(['ENOSPC', 'EDQUOT', 'SQLITE_FULL'])('%s is "no space"', (code) => {
    expect(isNoSpace(Object.assign(new Error('x'), { code }))).toBe(true);
  });
  it.each(['EIO', 'ENOENT', undefined])('%s is not', (code) => {
    expect(isNoSpace(Object.assign(new Error('x'), { code }))).toBe(false);
    expect(isNoSpace(null)).toBe(false);
  });

  it('a refusal whose audit cannot be written keeps its code and says it is not in the log', () => {
    const err = new EcluseError('E_DIGEST', 'img 1 does not match', { check: 'artifact-digest' });
    const full = () => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    const r = auditUnlessFull(err, full);
    expect(r).toBeInstanceOf(EcluseError);
    expect(r.code).toBe('E_DIGEST');
    expect(r.message).toBe('img 1 does not match (this could not be written to the audit log: the disk is full)');
    expect(r.context).toEqual({ check: 'artifact-digest' });
    expect(auditUnlessFull(err, () => undefined)).toBe(err);
    expect(() =>
      auditUnlessFull(err, () => {
        throw new Error('other');
      }),
    ).toThrow('other');
  });

  it('asEcluseError maps ENOSPC anywhere to E_NO_SPACE', async () => {
    const { asEcluseError } = await import('../../sneakernet/errors.js');
    const e = asEcluseError(
      Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' }),
    );
    expect(e.code).toBe('E_NO_SPACE');
    expect(e.message).toBe('the disk is full (ENOSPC: no space left on device, write): make room, then try again');
    expect(fs.existsSync(dir)).toBe(true);
  });
});
