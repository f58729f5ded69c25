/**
 * `npm run bench:audit [-- N]`: fills a fresh station's audit log with N events (default 1,000,000) through
 * appendAudit (the same path every import takes: row, leaf, frontier), then times a full `audit verify`, a signed
 * checkpoint, rendering the first and a deep page of the web timeline (plain and filtered to refusals), and an
 * export with its verification outside.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { appendAudit } from '../verifier/audit.js';
import { signCheckpoint } from '../verifier/audit/checkpoint.js';
import { exportAudit } from '../verifier/audit/export.js';
import { ensureAuditKey } from '../verifier/audit/key.js';
import { verifyExport } from '../verifier/audit/verify-export.js';
import { verifyLog } from '../verifier/audit/verify.js';
import { openDb, setSetting } from '../verifier/db.js';
import { timelinePage } from '../verifier/web/pages/timeline.js';

const N = Number(process.argv[2] ?? 1_000_000);
const BATCH = 10_000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-audit-bench-'));
const db = openDb(dir);
setSetting(db, 'site_id', 'bench');
const user = { name: 'bench', role: 'auditor', via: 'loopback' as const };

const time = <T>(label: string, f: () => T): T => {
  const t = performance.now();
  const r = f();
  const ms = performance.now() - t;
  console.log(`${label.padEnd(44)} ${ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`}`);
  return r;
};

try {
  console.log(`audit log benchmark: ${N.toLocaleString('en')} events in ${dir}`);
  time(`append ${N.toLocaleString('en')} events (batches of ${BATCH})`, () => {
    for (let done = 0; done < N; done += BATCH) {
      db.transaction(() => {
        for (let i = done; i < Math.min(N, done + BATCH); i++) {
          const refused = i % 97 === 0;
          appendAudit(db, {
            kind: refused ? 'check.artifact-digest' : 'check.signatures',
            outcome: refused ? 'fail' : 'pass',
            code: refused ? 'E_DIGEST' : null,
            message: refused
              ? `artifact ${i} does not match the sha256 in the signed statement`
              : `2 trusted signer(s), 2 required`,
            bundleId: `bundle-${Math.floor(i / 20)}`,
            station: 'relay-1',
            artifact: `image-${i % 50}@${Math.floor(i / 1000)}`,
            media: `/run/ecluse/media/sd${String.fromCharCode(97 + (i % 4))}1`,
            details: { i },
          });
        }
      })();
    }
  });
  const perEvent = time('sign a checkpoint', () => signCheckpoint(db, dir, 'bench'));
  void perEvent;
  const s = time('audit verify (recompute every leaf and root)', () => verifyLog(db, dir));
  console.log(`  ${s.size} events, root ${s.root.slice(0, 16)}`);
  const render = (label: string, q: string) =>
    time(label, () => timelinePage(db, dir, user, new URLSearchParams(q)).length);
  render('render timeline: first page', '');
  render('render timeline: deep page (before=1000)', 'before=1000');
  render('render timeline: refusals, first page', 'outcome=fail');
  render('render timeline: refusals, deep page', 'outcome=fail&before=5000');
  render('render timeline: one bundle', `bundle=bundle-${Math.floor(N / 40)}`);
  const out = path.join(dir, 'export');
  time('audit export (verify, sign, write events.jsonl)', () => exportAudit(db, dir, { to: out }));
  const t = performance.now();
  const v = await verifyExport(out, ensureAuditKey(dir).publicKey);
  console.log(
    `${'audit verify-export (outside)'.padEnd(44)} ${((performance.now() - t) / 1000).toFixed(2)} s (${v.events} events)`,
  );
  const size = fs.statSync(path.join(dir, 'ecluse.sqlite')).size;
  console.log(
    `database size: ${(size / 1024 / 1024).toFixed(0)} MiB; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
  );
} finally {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
