/**
 * Image names (FORMAT.md 4.7): names as operators and Glance write them travel in the statement and the receipt;
 * what could mislead a reader or become a path is refused.
 */
import { describe, expect, it } from 'vitest';
import { IMAGE_NAME_MAX, imageNameProblem } from '../../sneakernet/schema-parts.js';
import { artifactSchema } from '../../sneakernet/statement.js';
import { makeArtifact } from './fixtures.js';

const artifact = (name: string) => artifactSchema.safeParse(makeArtifact(0, Buffer.alloc(10), { name }));

describe('image names', () => {
  it.each([
    'Ubuntu 24.04 LTS (Noble)',
    'débian-13-é',
    'Windows Server 2022 — Datacenter',
    '中文镜像',
    'debian-13',
    'a',
  ])('accepts %j', (name) => {
    expect(imageNameProblem(name)).toBeNull();
    expect(artifact(name).success).toBe(true);
  });

  it.each([
    ['', 'is empty'],
    ['x'.repeat(IMAGE_NAME_MAX + 1), 'is longer than 255 characters'],
    ['de\u0301bian', 'is not in Unicode NFC'],
    ['tab\there', 'holds the control or invisible character U+0009'],
    ['line\nbreak', 'holds the control or invisible character U+000A'],
    ['evil\u202Etxt.exe', 'holds the control or invisible character U+202E'],
    ['zero\u200Bwidth', 'holds the control or invisible character U+200B'],
    ['no\u00A0break', 'holds the control or invisible character U+00A0'],
    [' padded', 'starts or ends with a space'],
    ['../etc', 'holds a path separator (/ or \\)'],
    ['a\\b', 'holds a path separator (/ or \\)'],
  ])('refuses %j: %s', (name, problem) => {
    expect(imageNameProblem(name)).toBe(problem);
    const r = artifact(name);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe(`the image name ${problem}`);
  });

  it('counts the 255 in characters, not bytes or UTF-16 units', () => {
    expect(imageNameProblem('é'.repeat(255))).toBeNull();
    expect(imageNameProblem('😀'.repeat(255))).toBeNull();
    expect(imageNameProblem('😀'.repeat(256))).toBe('is longer than 255 characters');
  });
});
