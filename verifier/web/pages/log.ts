/** GET /audit/log: the log's verification status (recomputed when the log has grown), checkpoints, the audit key. */
import type { Db } from '../../db.js';
import { EcluseError } from '../../../sneakernet/errors.js';
import { listCheckpoints } from '../../audit/checkpoint.js';
import { loadAuditPublicKey, keyIdOf } from '../../audit/key.js';
import { verifyLog, type LogStatus } from '../../audit/verify.js';
import { html, layout, type PageUser } from '../html.js';

interface Cached {
  key: string;
  result: { ok: true; status: LogStatus } | { ok: false; code: string; message: string; index: unknown };
  at: string;
}
const cache = new WeakMap<Db, Cached>();

/** Verifies the whole log, reusing the last result while the log and its checkpoints are unchanged. */
export function logVerification(db: Db, home: string | null): Cached {
  const k = db
    .prepare(
      'SELECT (SELECT count(*) FROM audit_leaf) AS l, (SELECT max(seq) FROM audit) AS s, (SELECT count(*) FROM audit_checkpoint) AS c',
    )
    .get() as Record<string, number>;
  const key = JSON.stringify(k);
  const hit = cache.get(db);
  if (hit && hit.key === key && Date.now() - Date.parse(hit.at) < 300_000) return hit;
  let result: Cached['result'];
  try {
    result = { ok: true, status: verifyLog(db, home) };
  } catch (e) {
    if (!(e instanceof EcluseError)) throw e;
    result = { ok: false, code: e.code, message: e.message, index: e.context.index };
  }
  const c = { key, result, at: new Date().toISOString() };
  cache.set(db, c);
  return c;
}

export function logPage(db: Db, home: string | null, user: PageUser): string {
  const v = logVerification(db, home);
  const r = v.result;
  const key = home ? loadAuditPublicKey(home) : null;
  const cps = listCheckpoints(db).slice(-20).reverse();
  const body = html`<section class="panel ${r.ok ? 'ok' : 'bad'}" id="verification">
      <h2>${r.ok ? 'The log is intact' : 'The log was tampered with'}</h2>
      ${
        r.ok
          ? html`<p>
              ${r.status.size} events recomputed; root <code>${r.status.root}</code>; ${r.status.checkpoints} signed
              checkpoint(s) checked.
            </p>`
          : html`<p class="reason">${r.code}: ${r.message}</p>
              <p>First bad index: ${String(r.index)}</p>`
      }
      <p class="muted">Verified at ${v.at}. The same check: <code>ecluse audit verify</code>.</p>
    </section>
    <section class="panel" id="key">
      <h2>Audit key</h2>
      ${
        key
          ? html`<p>Key id <code>${keyIdOf(key)}</code> · <a href="/audit/key.pem">public key (PEM)</a></p>`
          : html`<p class="muted">No audit key yet (made at the first checkpoint).</p>`
      }
      <p class="muted">
        Outside the air gap: <code>ecluse audit verify-export DIR --key audit-key.pem --previous CHECKPOINT</code>
      </p>
    </section>
    <h2>Recent checkpoints</h2>
    <table id="checkpoints">
      <thead>
        <tr>
          <th>#</th>
          <th>Signed</th>
          <th>Size</th>
          <th>Root</th>
          <th>Why</th>
        </tr>
      </thead>
      <tbody>
        ${cps.map(
          (c) =>
            html`<tr>
              <td>${c.id}</td>
              <td>${c.time}</td>
              <td>${c.size}</td>
              <td class="mono">${c.root}</td>
              <td>${c.reason}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
  return layout({ title: 'Log integrity', user, body, active: 'log' });
}
