/**
 * Direct I/O (O_DIRECT): bytes move between the disk and the process's own buffers without a copy through the page
 * cache. An import writes a whole artifact once and reads the media once; through the page cache every byte is
 * copied twice by the kernel (media → cache → process, process → cache → disk), and on a virtual machine whose
 * memory the host reclaims those copies into fresh cache pages were most of the import's time (profiled 2026-12-03,
 * 4 GiB: `copy_to_iter` 21% and `copy_folio_from_iter` 25% of all samples, SHA-256 10%; a direct copy of the same
 * volume took 1.0 CPU-s of system time instead of 8-18).
 *
 * O_DIRECT needs the memory, the file offset and the length aligned to the device's block. Memory comes from a
 * shared WebAssembly memory, whose pages start on a 64 KiB boundary (more than any block size); offsets and lengths
 * are kept multiples of `DIRECT_ALIGN`. A file system that refuses O_DIRECT (iso9660, older tmpfs) is used through
 * the page cache as before: `openDirect` says which it got.
 */
import fs from 'node:fs';

/** Offsets and lengths of direct reads and writes are multiples of this (the largest logical block in use, 4 KiB). */
export const DIRECT_ALIGN = 4096;
const WASM_PAGE = 64 * 1024;

/** The one WebAssembly API used here (the project's type library, ES2023 without the DOM, does not declare it). */
interface SharedWasmMemory {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: unknown };
}

/**
 * `bytes` of shared memory whose start is 64 KiB-aligned (a WebAssembly memory's pages), or a plain
 * SharedArrayBuffer (no direct I/O from it) where no such memory can be made (a limit on address space).
 */
export function alignedSharedMemory(bytes: number): { memory: SharedArrayBuffer; aligned: boolean } {
  const pages = Math.ceil(bytes / WASM_PAGE);
  try {
    const wasm = (globalThis as unknown as { WebAssembly: SharedWasmMemory }).WebAssembly;
    const buffer = new wasm.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
    if (buffer instanceof SharedArrayBuffer) return { memory: buffer, aligned: true };
  } catch {
    // No WebAssembly memory (address space limited): page-cache I/O from an ordinary shared buffer.
  }
  return { memory: new SharedArrayBuffer(pages * WASM_PAGE), aligned: false };
}

export const roundUp = (n: number, to = DIRECT_ALIGN): number => Math.ceil(n / to) * to;

/**
 * Opens `file` with `flags` plus O_DIRECT when the file system takes it (`direct: true`), else without it; `tryDirect`
 * false (memory that is not aligned): without it at once. Errors other than the refusal of O_DIRECT are the caller's.
 */
export async function openDirect(
  file: string,
  flags: number,
  mode?: number,
  tryDirect = true,
): Promise<{ handle: fs.promises.FileHandle; direct: boolean }> {
  if (!tryDirect) return { handle: await fs.promises.open(file, flags, mode), direct: false };
  try {
    return { handle: await fs.promises.open(file, flags | fs.constants.O_DIRECT, mode), direct: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    // Linux checks O_EXCL before O_DIRECT: a refused O_DIRECT open with O_CREAT | O_EXCL created the file, ours.
    return { handle: await fs.promises.open(file, flags & ~fs.constants.O_EXCL, mode), direct: false };
  }
}

/**
 * Reads up to `length` bytes at `position` into `buffer`, in as many reads as it takes; less only at the end of the
 * file (a direct read stops short only there: the next one would be unaligned). Returns how many were read.
 */
export async function readUpTo(
  handle: fs.promises.FileHandle,
  buffer: Buffer,
  length: number,
  position: number,
  direct: boolean,
): Promise<number> {
  let n = 0;
  while (n < length) {
    const { bytesRead } = await handle.read(buffer, n, length - n, position + n);
    n += bytesRead;
    if (bytesRead === 0 || (direct && n % DIRECT_ALIGN !== 0)) break;
  }
  return n;
}
