/** GET /audit/: the timeline with filters, keyset pagination, the daemon's live status and the log's latest checkpoint. */
import type { Db } from '../../db.js';
import { overview } from './overview.js';
import { latestCheckpoint } from '../../audit/checkpoint.js';
import { readStatus } from '../../daemon/status.js';
import { eventsTable } from '../components.js';
import { html, layout, qs, type PageUser, type Safe } from '../html.js';
import { eventKinds, FILTER_KEYS, filterFrom, timeline, type TimelineFilter } from '../queries.js';

const OUTCOMES = ['pass', 'fail', 'accepted', 'refused', 'info'];

function intParam(p: URLSearchParams, k: string): number | undefined {
  const v = p.get(k);
  return v && /^[0-9]{1,15}$/.test(v) ? Number(v) : undefined;
}

function filtersForm(db: Db, f: TimelineFilter): Safe {
  const kinds = eventKinds(db);
  const field = (k: 'bundle' | 'artifact' | 'media', label: string, ph: string) =>
    html`<label>${label}<input name="${k}" value="${f[k] ?? ''}" placeholder="${ph}" /></label>`;
  return html`<form class="filters" method="get" action="/audit/" role="search">
    <label
      >Kind<select name="kind">
        <option value="">any</option>
        ${['check.*', 'import.*', 'update.*', ...kinds].map(
          (k) => html`<option${f.kind === k ? html` selected` : ''}>${k}</option>`,
        )}
      </select></label
    >
    <label
      >Outcome<select name="outcome" id="f-outcome">
        <option value="">any</option>
        ${OUTCOMES.map((o) => html`<option${f.outcome === o ? html` selected` : ''}>${o}</option>`)}
      </select></label
    >
    ${field('bundle', 'Bundle', 'bundle id')}${field('artifact', 'Artifact', 'name or name@version')}${field('media', 'Media', 'mount point')}
    <label>From (UTC)<input name="from" value="${f.from ?? ''}" placeholder="YYYY-MM-DD" /></label>
    <label>To (UTC)<input name="to" value="${f.to ?? ''}" placeholder="YYYY-MM-DD" /></label>
    <button type="submit" id="apply">Filter</button>
  </form>`;
}

function daemonPanel(home: string | null): Safe {
  if (!home) return html``;
  const s = readStatus(home);
  const p = s.progress;
  return html`<section class="panel" id="daemon">
    <h2>Import daemon: ${s.state}</h2>
    <p>${s.message}</p>
    ${p ? html`<p>${p.phase} bundle ${p.station} #${p.sequence}: <progress max="100" value="${p.percent}">${p.percent}%</progress> ${p.percent}%</p>` : ''}
    ${s.waiting.map((w) => html`<p class="reason">${w.message}</p>`)}
    ${s.last ? html`<p class="muted">Last: ${s.last.outcome} ${s.last.bundle ?? ''} ${s.last.code ?? ''} at ${s.last.at}</p>` : ''}
  </section>`;
}

export function timelinePage(db: Db, home: string | null, user: PageUser, params: URLSearchParams): string {
  const f = filterFrom(params);
  const before = intParam(params, 'before');
  const after = intParam(params, 'after');
  const page = timeline(db, f, {
    ...(before !== undefined ? { before } : {}),
    ...(after !== undefined ? { after } : {}),
  });
  const base: Record<string, string | undefined> = {};
  for (const k of FILTER_KEYS) base[k] = f[k];
  const cp = latestCheckpoint(db);
  const first = before === undefined && after === undefined && FILTER_KEYS.every((k) => f[k] === undefined);
  const body = html`${first ? overview(db, home) : ''}
    <div class="grid">
      ${daemonPanel(home)}
      <section class="panel" id="checkpoint">
        <h2>Latest checkpoint</h2>
        ${
          cp
            ? html`<dl>
                  <dt>Origin</dt>
                  <dd>${cp.origin}</dd>
                  <dt>Size</dt>
                  <dd>${cp.size} events</dd>
                  <dt>Root</dt>
                  <dd class="mono">${cp.root}</dd>
                  <dt>Signed</dt>
                  <dd>${cp.time}</dd>
                </dl>
                <p><a href="/audit/log">Verify the log</a></p>`
            : html`<p class="muted">No checkpoint signed yet.</p>`
        }
      </section>
    </div>
    ${filtersForm(db, f)}
    <p class="downloads">
      Download these events: <a href="/audit/events.jsonl${qs(base)}">JSON Lines</a> ·
      <a href="/audit/events.csv${qs(base)}">CSV</a>
    </p>
    ${eventsTable(page.rows)}
    <nav class="pager">
      ${page.newer !== null ? html`<a href="/audit/${qs({ ...base, after: page.newer })}" id="newer">← Newer</a>` : ''}${
        page.older !== null ? html`<a href="/audit/${qs({ ...base, before: page.older })}" id="older">Older →</a>` : ''
      }
    </nav>`;
  return layout({ title: 'Audit timeline', user, body, active: 'timeline' });
}
