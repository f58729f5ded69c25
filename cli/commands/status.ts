/** `ecluse status`: what the import daemon is doing, for the operator at the station. */
import type { Command } from 'commander';
import fs from 'node:fs';
import { gaps, type Gap } from '../../verifier/accepted-state.js';
import { readStatus } from '../../verifier/daemon/status.js';
import { dbPath, openDb } from '../../verifier/db.js';
import { registryCounts } from '../../verifier/registry/images.js';
import { lastUpdate, type LastUpdate } from '../../verifier/update-results.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { stationHomeError } from '../../sneakernet/station-home.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';

/**
 * `state: message`, without saying the state twice: a message that already begins with the state word (or carries
 * it, as the daemon's "idle; last: ..." does) is printed as it is.
 */
export function said(state: string, message: string): string {
  const m = message.trim();
  if (m === '' || m.toLowerCase() === state) return state;
  return new RegExp(`^${state}\\b`, 'i').test(m) ? m : `${state}: ${m}`;
}

export function registerStatus(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  program
    .command('status')
    .description(
      'show what the import daemon is doing: idle, importing (with progress), waiting for a volume, last outcome',
    )
    .addHelpText(
      'after',
      '\nWith --json: {"ok":true,"status":{"state":"idle|reading|importing|waiting|stopped","message",...},\n' +
        '"gaps":[{"station","sequence","refusedWith"}]} (bundles below a station\'s last accepted one, not imported),\n' +
        '"registry":{"images","repositories","blobs","bytes"}} (the container images the registry serves),\n' +
        '"update":{"event","at","version","previous","bundle","code","message"}|null (the last self-update outcome).\n' +
        '\nExample:\n  ecluse --home /var/lib/ecluse status\n',
    )
    .action(async () => {
      await report(ctx(), async () => {
        const h = resolveHome(home());
        // A home that is not there, or that this user may not read, would read as "stopped": say why instead.
        if (!fs.existsSync(h)) {
          throw new EcluseError(
            'E_NOT_FOUND',
            `no import station at ${h}: the folder does not exist; give the station's state folder with --home (e.g. /var/lib/ecluse), or set one up there with ecluse site init`,
            { check: 'station-home' },
          );
        }
        try {
          fs.accessSync(h, fs.constants.R_OK | fs.constants.X_OK);
        } catch (e) {
          throw stationHomeError(h, e);
        }
        const s = readStatus(h);
        const missing = gapsAt(h);
        const registry = registryAt(h);
        const update = updateAt(h);
        const human = [said(s.state, s.message)];
        const p = s.progress;
        if (p) {
          human.push(
            `  ${p.phase} bundle ${p.station} #${p.sequence}${p.volume ? ` ${p.volume}` : ''} from ${p.mountPoint}: ` +
              `${p.percent}% (${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)})`,
          );
        }
        for (const w of s.waiting) human.push(`  ${w.message} (have ${w.have.length} of ${w.volumes})`);
        for (const m of s.media) human.push(`  medium ${m.mountPoint} (${m.device}): ${said(m.state, m.message)}`);
        if (s.last) human.push(`  last ${s.last.outcome} at ${s.last.at}: ${s.last.message}`);
        for (const g of missing) {
          human.push(
            `  gap: bundle ${g.station} #${g.sequence} not imported (${g.refusedWith ? `refused here: ${g.refusedWith}` : 'never arrived'}); later bundles were accepted`,
          );
        }
        if (registry.images > 0) {
          human.push(
            `  registry: ${registry.images} container image(s) in ${registry.repositories} repositor${registry.repositories === 1 ? 'y' : 'ies'}, ${registry.blobs} blob(s), ${formatBytes(registry.bytes)}`,
          );
        }
        if (update) {
          human.push(
            `  last self-update: ${update.event}${update.version ? ` ecluse ${update.version}` : ''} at ${update.at}: ${update.message}`,
          );
        }
        return { json: { status: s, gaps: missing, registry, update }, human };
      });
    });
}

/** The gaps of the import station at `home` (none when it has no database yet). */
function gapsAt(home: string): Gap[] {
  if (!fs.existsSync(dbPath(home))) return [];
  const db = openDb(home, { readonly: true });
  try {
    const hasBundles = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stations'").get();
    return hasBundles ? gaps(db) : [];
  } finally {
    db.close();
  }
}

/** What the registry of the import station at `home` holds (zeros before its first container image). */
function registryAt(home: string): ReturnType<typeof registryCounts> {
  const none = { images: 0, repositories: 0, blobs: 0, bytes: 0 };
  if (!fs.existsSync(dbPath(home))) return none;
  const db = openDb(home, { readonly: true });
  try {
    const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'container_images'").get();
    return has ? registryCounts(db) : none;
  } finally {
    db.close();
  }
}

/** The last self-update outcome audited at `home` (none before its first, or without a database). */
function updateAt(home: string): LastUpdate | null {
  if (!fs.existsSync(dbPath(home))) return null;
  const db = openDb(home, { readonly: true });
  try {
    const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").get();
    return has ? lastUpdate(db) : null;
  } finally {
    db.close();
  }
}
