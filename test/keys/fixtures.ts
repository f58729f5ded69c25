/** Shared helpers for the keys/ suites: temporary KEYDIRs made by the real ceremony (no committed keys). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { EcluseError, type ErrorCode } from '../../sneakernet/errors.js';

export const PASS = 'correct horse battery staple';

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ecluse-keys-${prefix}-`));
}

export function modeOf(p: string): number {
  return fs.statSync(p).mode & 0o777;
}

/** Runs `fn` and returns the EcluseError it throws, failing the test if it throws something else or nothing. */
export async function refusal(fn: () => unknown, code: ErrorCode): Promise<EcluseError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(EcluseError);
  const err = caught as EcluseError;
  expect(err.code, err.message).toBe(code);
  return err;
}
