import { describe, expect, it } from 'vitest';
import {
  appendLeaf,
  consistencyProof,
  emptyFrontier,
  EMPTY_ROOT,
  frontierRoot,
  leafHash,
  rootOf,
  verifyConsistency,
} from '../../../verifier/audit/merkle.js';

// The certificate-transparency reference vectors (RFC 6962 test data): 8 leaves and the roots of each prefix.
const INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const ROOTS: Record<number, string> = {
  1: '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  2: 'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  8: '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
};

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`event ${i}`)));

describe('Merkle tree (RFC 6962/9162)', () => {
  it('matches the reference roots', () => {
    const l = INPUTS.map((h) => leafHash(Buffer.from(h, 'hex')));
    expect(rootOf([]).equals(EMPTY_ROOT)).toBe(true);
    for (const [n, root] of Object.entries(ROOTS)) expect(rootOf(l.slice(0, Number(n))).toString('hex')).toBe(root);
  });

  it('the append frontier gives the same root as the recursive definition at every size', () => {
    const l = leaves(70);
    const f = emptyFrontier();
    for (let i = 0; i < l.length; i++) {
      appendLeaf(f, l[i] as Buffer);
      expect(frontierRoot(f).equals(rootOf(l, 0, i + 1))).toBe(true);
    }
  });

  it('consistency proofs verify for every pair of sizes up to 40 and fail when anything changes', () => {
    const l = leaves(40);
    for (let n = 1; n <= 40; n++) {
      const second = rootOf(l, 0, n);
      for (let m = 1; m <= n; m++) {
        const first = rootOf(l, 0, m);
        const proof = consistencyProof(l, m, n);
        expect(verifyConsistency(m, n, first, second, proof), `${m}->${n}`).toBe(true);
        if (m < n) {
          expect(verifyConsistency(m, n, leafHash('x'), second, proof)).toBe(false);
          expect(verifyConsistency(m, n, first, leafHash('x'), proof)).toBe(false);
          const bad = proof.map((p, i) => (i === 0 ? leafHash('y') : p));
          expect(verifyConsistency(m, n, first, second, bad)).toBe(false);
          expect(verifyConsistency(m, n, first, second, proof.slice(1))).toBe(false);
        }
      }
    }
  });

  it('a rewritten history has no consistency proof', () => {
    const l = leaves(20);
    const rewritten = [...l];
    rewritten[3] = leafHash('forged');
    const proof = consistencyProof(rewritten, 10, 20);
    expect(verifyConsistency(10, 20, rootOf(l, 0, 10), rootOf(rewritten), proof)).toBe(false);
  });
});
