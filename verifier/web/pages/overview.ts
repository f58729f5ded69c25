/** The first page's morning overview (GET /audit/ without filters). */
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../../db.js';
import { readStatus } from '../../daemon/status.js';
import { gaps } from '../../accepted-state.js';
import { getSetting } from '../../db.js';
import { activeImageTotals } from '../../image-catalog.js';
import { decisionsSince, type AuditRecord } from '../../audit/events.js';
import { bundleLink } from '../components.js';
import { html, humanSize, type Safe } from '../html.js';
import { logVerification } from '../verification.js';

type Decision = Pick<AuditRecord, 'at' | 'kind' | 'code' | 'message' | 'bundle_id' | 'station'>;

/**
 * The morning overview: what came in since yesterday, what was refused and what to do about it, what is waiting,
 * the store's size and free space, and whether the log is intact. Plain HTML: readable on a phone, printable.
 */
export function overview(db: Db, home: string | null): Safe {
  const since = new Date(Date.now() - 24 * 3600_000).toISOString();
  const decisions = decisionsSince(db, since);
  const accepted = decisions.filter((d) => d.kind === 'import.accepted');
  const refused = decisions.filter((d) => d.kind === 'import.refused');
  const store = activeImageTotals(db);
  let free: number | null = null;
  if (home) {
    try {
      const st = fs.statfsSync(path.join(home, 'store'));
      free = st.bavail * st.bsize;
    } catch {
      free = null;
    }
  }
  const waiting = home ? readStatus(home).waiting : [];
  // Bundles below a station's last accepted one that never arrived or were refused: named, not blocking (FORMAT 6).
  const missing = gaps(db);
  const site = getSetting(db, 'site_id') ?? 'SITE';
  const v = logVerification(db, home);
  const log = v.result;
  const reason = (d: Decision) =>
    d.code && d.message.startsWith(`${d.code}: `) ? d.message.slice(d.code.length + 2) : d.message;
  return html`<section class="overview" id="overview">
    <h2>Since yesterday</h2>
    <div class="grid">
      <section class="panel ${refused.length ? 'bad' : 'ok'}" id="came-in">
        <h3>
          <span class="big">${accepted.length}</span> bundle(s) imported,
          <span class="big">${refused.length}</span> refused
        </h3>
        ${
          accepted.length
            ? html`<ul>
                ${accepted.map((d) => html`<li>${bundleLink(d.bundle_id)} ${d.message}</li>`)}
              </ul>`
            : ''
        }
        ${
          refused.length
            ? html`<ul id="refused-today">
                ${refused.map(
                  (d) =>
                    html`<li>
                      ${bundleLink(d.bundle_id)} <span class="reason">${d.code ?? ''}</span> ${reason(d)} <br /><span
                        class="todo"
                        >What to do:</span
                      >
                      ${advice(d.code)}
                    </li>`,
                )}
              </ul>`
            : html`<p class="muted">Nothing was refused.</p>`
        }
      </section>
      <section class="panel ${waiting.length || missing.length ? 'bad' : ''}" id="waiting">
        <h3>Waiting</h3>
        ${
          waiting.length
            ? html`<ul>
                ${waiting.map((x) => html`<li>${x.message}</li>`)}
              </ul>`
            : html`<p class="muted">No bundle is waiting for a volume.</p>`
        }
        ${
          missing.length
            ? html`<ul id="missing">
                ${missing.map(
                  (g) =>
                    html`<li>
                      bundle #${String(g.sequence)} of ${g.station} is
                      missing${g.refusedWith ? html` (refused here: ${g.refusedWith})` : html``}:
                      <code>ecluse export --resend ${String(g.sequence)} --site ${site} --to MEDIA</code>
                    </li>`,
                )}
              </ul>`
            : html`<p class="muted">No bundle is missing.</p>`
        }
      </section>
      <section class="panel" id="store">
        <h3>Image store</h3>
        <p><span class="big">${humanSize(store.bytes)}</span> in ${store.images} image(s)</p>
        <p>${free === null ? html`<span class="muted">free space unknown</span>` : html`${humanSize(free)} free`}</p>
      </section>
      <section class="panel ${log && !log.ok ? 'bad' : log ? 'ok' : ''}" id="integrity">
        <h3>Audit log</h3>
        ${
          log === null
            ? html`<p class="muted">Being verified…</p>`
            : log.ok
              ? html`<p>Intact: ${log.status.size} events, checked ${v.at ?? ''}</p>`
              : html`<p class="reason">${log.code}: ${log.message}</p>
                  <p>
                    <span class="todo">What to do:</span> keep the database as it is and compare with the last audit
                    export (<a href="/audit/log">details</a>).
                  </p>`
        }
      </section>
    </div>
  </section>`;
}

/** The operator's next step for a refusal, by code (the refusal's own message says which check failed). */
function advice(code: string | null): string {
  switch (code) {
    case 'E_DIGEST':
    case 'E_SIZE':
    case 'E_FORMAT':
    case 'E_MISSING_VOLUME':
    case 'E_UNEXPECTED_FILE':
      return 'the media was damaged or altered: ask the export station to write the bundle again (ecluse export --resend N).';
    case 'E_SEQUENCE_GAP':
    case 'E_CHAIN':
      return 'bring the missing earlier bundle; later bundles are not blocked.';
    case 'E_EXPIRED':
      return 'ask the export station for a fresh bundle (ecluse export --replace N).';
    case 'E_NOT_ALLOWED':
    case 'E_ROLLBACK':
      return 'the site policy refused an artifact: change the policy or what is exported.';
    case 'E_SIGNATURE':
    case 'E_UNTRUSTED_SIGNER':
    case 'E_THRESHOLD':
    case 'E_REVOKED':
      return 'do not trust this media; report it, and have the bundle signed again by trusted operators.';
    case 'E_WRONG_SITE':
      return 'this bundle is for another site: return the media.';
    case 'E_REPLAY':
      return 'nothing: the bundle was already imported.';
    default:
      return 'read the reason, fix what it names, and import again.';
  }
}
