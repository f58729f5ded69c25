/**
 * RFC 6962 / RFC 9162 Merkle tree hashing: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right).
 * The frontier (compact range) appends in O(log n); `rootOf`/`consistencyProof` work over an array of leaf hashes;
 * `verifyConsistency` is RFC 9162 §2.1.4.2.
 */
import { createHash } from 'node:crypto';

export function leafHash(data: Buffer | string): Buffer {
  return createHash('sha256')
    .update(Buffer.from([0]))
    .update(data)
    .digest();
}

export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.from([1]))
    .update(left)
    .update(right)
    .digest();
}

export const EMPTY_ROOT = createHash('sha256').digest();

/** Perfect subtrees covering [0, size), largest first. */
export interface Frontier {
  size: number;
  nodes: Array<{ size: number; hash: Buffer }>;
}

export function emptyFrontier(): Frontier {
  return { size: 0, nodes: [] };
}

export function appendLeaf(f: Frontier, leaf: Buffer): void {
  f.nodes.push({ size: 1, hash: leaf });
  f.size += 1;
  for (;;) {
    const n = f.nodes.length;
    const a = f.nodes[n - 2];
    const b = f.nodes[n - 1];
    if (!a || !b || a.size !== b.size) break;
    f.nodes.splice(n - 2, 2, { size: a.size * 2, hash: nodeHash(a.hash, b.hash) });
  }
}

export function frontierRoot(f: Frontier): Buffer {
  const last = f.nodes[f.nodes.length - 1];
  if (!last) return EMPTY_ROOT;
  let h = last.hash;
  for (let i = f.nodes.length - 2; i >= 0; i--) h = nodeHash((f.nodes[i] as { hash: Buffer }).hash, h);
  return h;
}

export function serializeFrontier(f: Frontier): string {
  return JSON.stringify(f.nodes.map((n) => [n.size, n.hash.toString('hex')]));
}

export function parseFrontier(size: number, text: string): Frontier {
  const raw = JSON.parse(text) as Array<[number, string]>;
  return { size, nodes: raw.map(([s, h]) => ({ size: s, hash: Buffer.from(h, 'hex') })) };
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[lo:hi]) over leaf hashes. */
export function rootOf(leaves: readonly Buffer[], lo = 0, hi = leaves.length): Buffer {
  const n = hi - lo;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[lo] as Buffer;
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(rootOf(leaves, lo, lo + k), rootOf(leaves, lo + k, hi));
}

/** The frontier of the first `size` leaves (what an incremental export carries for the part it leaves out). */
export function frontierOf(leaves: readonly Buffer[], size: number): Frontier {
  const f = emptyFrontier();
  for (let i = 0; i < size; i++) appendLeaf(f, leaves[i] as Buffer);
  return f;
}

/** RFC 9162 §2.1.4.1: PROOF(m, D[n]) for 0 < m <= n. */
export function consistencyProof(leaves: readonly Buffer[], m: number, n = leaves.length): Buffer[] {
  if (m <= 0 || m > n || n > leaves.length) throw new RangeError(`no consistency proof from ${m} to ${n}`);
  const sub = (m1: number, lo: number, hi: number, complete: boolean): Buffer[] => {
    const size = hi - lo;
    if (m1 === size) return complete ? [] : [rootOf(leaves, lo, hi)];
    const k = largestPowerOfTwoBelow(size);
    if (m1 <= k) return [...sub(m1, lo, lo + k, complete), rootOf(leaves, lo + k, hi)];
    return [...sub(m1 - k, lo + k, hi, false), rootOf(leaves, lo, lo + k)];
  };
  return sub(m, 0, n, true);
}

/** RFC 9162 §2.1.4.2: does `proof` show that the tree of size `first` is a prefix of the tree of size `second`? */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Buffer,
  secondRoot: Buffer,
  proof: readonly Buffer[],
): boolean {
  if (first <= 0 || first > second) return false;
  if (first === second) return proof.length === 0 && firstRoot.equals(secondRoot);
  const path = [...proof];
  if (path.length === 0) return false;
  if (isPowerOfTwo(first)) path.unshift(firstRoot);
  let fn = first - 1;
  let sn = second - 1;
  const lsb = (x: number) => x % 2 === 1;
  const shr = () => {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  };
  while (lsb(fn)) shr();
  let fr = path[0] as Buffer;
  let sr = path[0] as Buffer;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!lsb(fn)) while (!lsb(fn) && fn !== 0) shr();
    } else {
      sr = nodeHash(sr, c);
    }
    shr();
  }
  return fr.equals(firstRoot) && sr.equals(secondRoot) && sn === 0;
}
