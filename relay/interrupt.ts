/**
 * Folders an export is writing right now (`.partial-*`, and bundle folders renamed into place but not recorded yet).
 * A SIGINT/SIGTERM handler removes them synchronously before the process exits, so an interrupted export leaves
 * nothing that looks like a bundle, nor a half-written folder taking up the stick.
 */
import fs from 'node:fs';

const inFlight = new Set<string>();

export function holdFolder(p: string): void {
  inFlight.add(p);
}

export function releaseFolder(p: string): void {
  inFlight.delete(p);
}

/** Removes every folder held now; returns them. */
export function removeHeldFolders(): string[] {
  const removed = [...inFlight];
  for (const p of removed) fs.rmSync(p, { recursive: true, force: true });
  inFlight.clear();
  return removed;
}
