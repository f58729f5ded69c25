/** The first page's morning overview (GET /audit/ without filters). */
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../../db.js';
import { readStatus } from '../../daemon/status.js';
import { gaps } from '../../accepted-state.js';
import { getSetting } from '../../db.js';
import { activeImageTotals } from '../../image-catalog.js';
import { decisionsSince } from '../../audit/decisions.js';
import type { AuditRecord } from '../../audit/events.js';
import { bundleLink } from '../components.js';
import { html, humanSize, type Safe } from '../html.js';
import { logVerification } from '../verification.js';
import { nextStepFor, resendCommand } from '../../refusal.js';

type Decision = Pick<AuditRecord, 'at' | 'kind' | 'code' | 'message' | 'bundle_id' | 'station' | 'details'>;

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
  // What to do about each refusal: the same advice the CLI's refusal line ends with (refusal.ts, one source). The
  // logged line already ends with that command when it was the same then: it is said once, under "What to do".
  const stepOf = (d: Decision) => {
    const r = refusalRecord(d.details);
    return nextStepFor(
      { db, siteId: site },
      { code: d.code, check: r.check },
      { bundleId: d.bundle_id, station: d.station, sequence: r.sequence },
    );
  };
  const reason = (d: Decision) => {
    const text = d.code && d.message.startsWith(`${d.code}: `) ? d.message.slice(d.code.length + 2) : d.message;
    const step = `; ${stepOf(d)}`;
    return text.endsWith(step) ? text.slice(0, -step.length) : text;
  };
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
                      ${stepOf(d)}
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
                      <code>${resendCommand(site, g.sequence)}</code>
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

/** The failed check and the sequence an `import.refused` event's details name (refusal.ts writes them). */
function refusalRecord(details: string): { check: string | null; sequence: number | null } {
  try {
    const d = JSON.parse(details) as { check?: unknown; sequence?: unknown };
    return {
      check: typeof d.check === 'string' ? d.check : null,
      sequence: typeof d.sequence === 'number' ? d.sequence : null,
    };
  } catch {
    return { check: null, sequence: null };
  }
}
