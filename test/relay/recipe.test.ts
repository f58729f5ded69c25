/** relay/recipe.ts on a damaged relay home: a catalog blob shorter than its catalog size is E_STORE, not a bug. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refineInPlace } from '../../relay/recipe.js';
import { EcluseError } from '../../sneakernet/errors.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-recipe-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('a recipe over a damaged catalog blob', () => {
  it('refuses a target blob cut short with E_STORE naming the file and the next step', async () => {
    const size = 64 * 1024;
    const base = path.join(dir, 'base');
    const target = path.join(dir, 'target');
    fs.writeFileSync(base, randomBytes(size));
    fs.writeFileSync(target, randomBytes(size / 2)); // the catalog says `size`; the disk holds half
    const recipe = { ops: [{ from: 'bundle' as const, size }], carried: size };
    const err = await refineInPlace(recipe, base, target, size).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EcluseError);
    expect(err).toMatchObject({ code: 'E_STORE', context: { check: 'catalog-blob', file: target } });
    expect((err as EcluseError).message).toBe(
      `the catalog blob ${target} is shorter than the catalog records: the relay home is damaged; restore it from a ` +
        'backup, or remove the file and fetch or add that release again',
    );
  });
});
