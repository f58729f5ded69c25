/** Pieces shared by the pages: the events table, links to bundles/artifacts/media, details as a definition list. */
import type { AuditRecord } from '../audit/canonical.js';
import { html, outcomeBadge, qs, type Safe } from './html.js';

export const bundleLink = (id: string | null): Safe | string =>
  id
    ? html`<a href="/audit/bundle/${encodeURIComponent(id)}" class="mono"
        >${id.length > 20 ? `${id.slice(0, 18)}…` : id}</a
      >`
    : '';

export const artifactLink = (a: string | null): Safe | string => {
  if (!a) return '';
  const name = a.includes('@') ? a.slice(0, a.lastIndexOf('@')) : a;
  return html`<a href="/audit/artifact/${encodeURIComponent(name)}">${a}</a>`;
};

/**
 * A link to the medium an event at mount point `m` (sequence `seq`) was about: the media page resolves which stick
 * was mounted there then (media-sessions.ts) and shows it under its filesystem UUID or USB serial.
 */
export const mediaLink = (m: string | null, seq?: number): Safe | string =>
  m
    ? html`<a
        href="/audit/media/view${seq === undefined ? qs({ id: m }) : qs({ mount: m, seq: String(seq) })}"
        class="mono"
        >${m}</a
      >`
    : '';

/** A value of the details as a person reads it: nested objects as `key: value, ...`, never raw JSON. */
function readable(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map(readable).join(', ');
  return Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== null && x !== undefined && x !== '')
    .map(([k, x]) => `${k}: ${readable(x)}`)
    .join(', ');
}

export function detailsList(text: string): Safe {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return html`<code>${text}</code>`;
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj) || Object.keys(obj).length === 0) return html``;
  return html`<dl>
    ${Object.entries(obj as Record<string, unknown>).map(
      ([k, v]) =>
        html`<dt>${k}</dt>
          <dd class="mono">${readable(v)}</dd>`,
    )}
  </dl>`;
}

export function eventsTable(rows: AuditRecord[], o: { showBundle?: boolean } = {}): Safe {
  if (rows.length === 0) return html`<p class="muted" id="no-events">No events match.</p>`;
  return html`<table class="events">
    <thead>
      <tr>
        <th>#</th>
        <th>Time (UTC)</th>
        <th>Kind</th>
        <th>Outcome</th>
        <th>What happened</th>
        ${o.showBundle === false ? '' : html`<th>Bundle</th>`}
        <th>Artifact</th>
        <th>Media</th>
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (r) =>
          html`<tr data-seq="${r.seq}" data-kind="${r.kind}" data-outcome="${r.outcome}">
            <td class="mono">${r.seq}</td>
            <td class="mono">${r.at.replace('T', ' ').replace(/\.\d+Z$|Z$/, '')}</td>
            <td><a href="/audit/${qs({ kind: r.kind })}">${r.kind}</a></td>
            <td>${outcomeBadge(r.outcome)}</td>
            <td>
              ${r.code ? html`<span class="reason">${r.code}</span> ` : ''}${r.code && r.message.startsWith(`${r.code}: `) ? r.message.slice(r.code.length + 2) : r.message}
            </td>
            ${o.showBundle === false ? '' : html`<td>${bundleLink(r.bundle_id)}</td>`}
            <td>${artifactLink(r.artifact)}</td>
            <td>${mediaLink(r.media, r.seq)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}
