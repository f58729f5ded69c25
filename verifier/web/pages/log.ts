/** GET /audit/log: the log's verification status (recomputed when the log has grown), checkpoints, the audit key. */
import type { Db } from '../../db.js';
import { listCheckpoints } from '../../audit/checkpoint.js';
import { keyIdOf, loadAuditPublicKey } from '../../audit/key.js';
import { html, layout, type PageUser } from '../html.js';
import { logVerification } from '../verification.js';

export function logPage(db: Db, home: string | null, user: PageUser): string {
  const v = logVerification(db, home);
  const r = v.result;
  const key = home ? loadAuditPublicKey(home) : null;
  const cps = listCheckpoints(db).slice(-20).reverse();
  const running = v.running
    ? html`<p class="muted" id="verifying">A verification of the whole log is running: reload in a few seconds.</p>`
    : '';
  const body = html`<section class="panel ${r === null ? '' : r.ok ? 'ok' : 'bad'}" id="verification">
      <h2>${r === null ? 'Verifying the log…' : r.ok ? 'The log is intact' : 'The log was tampered with'}</h2>
      ${
        r === null
          ? ''
          : r.ok
            ? html`<p>
                ${r.status.size} events recomputed; root <code>${r.status.root}</code>; ${r.status.checkpoints} signed
                checkpoint(s) checked.
              </p>`
            : html`<p class="reason">${r.code}: ${r.message}</p>
                <p>First bad index: ${r.index === null ? 'unknown' : String(r.index)}</p>`
      }${running}${v.at ? html`<p class="muted">Verified at ${v.at}. The same check: <code>ecluse audit verify</code>.</p>` : ''}
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
