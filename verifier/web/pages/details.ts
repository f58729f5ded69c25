/**
 * The bundle page (every check with pass/fail and the reason, signers, volumes, media, images), the artifact page
 * (version history), and the media pages (what each medium carried, its identity as the daemon recorded it).
 */
import { subjectName } from '../../../sneakernet/subject.js';
import type { Db } from '../../db.js';
import { artifactImages, artifactNames, imagesOfBundle } from '../../image-catalog.js';
import { artifactLink, bundleLink, detailsList, eventsTable, mediaLink } from '../components.js';
import { bundleContainerImages } from './container-images.js';
import { html, humanSize, layout, outcomeBadge, qs, type PageUser } from '../html.js';
import { retiredImages, type RetirementReason } from '../../retired-images.js';
import { bundleEvents } from '../queries.js';
import { bundleRecord } from '../../accepted-state.js';
import { artifactEvents } from '../../audit/events.js';
import { mediaByIdentity, mediumEvents } from '../media-sessions.js';

const RETIRED_WHY: Record<RetirementReason, string> = {
  operator: 'ecluse image retire',
  'keep-newest': "the policy's keepNewest",
  api: 'deleted through the Glance API',
};

/** The sequence the statement of a refused bundle claimed, from the refusal's details (null when never read). */
function claimedSequence(events: Array<{ details: string }>): number | null {
  for (const e of events) {
    try {
      const d = JSON.parse(e.details) as { sequence?: unknown };
      if (typeof d.sequence === 'number') return d.sequence;
    } catch {
      // details that are not JSON name no sequence
    }
  }
  return null;
}

export function bundlePage(db: Db, user: PageUser, id: string): string | null {
  const rec = bundleRecord(db, id);
  const events = bundleEvents(db, id);
  if (!rec && events.length === 0) return null;
  const checks = events.filter((e) => e.kind.startsWith('check.'));
  const decisions = events.filter((e) => e.kind.startsWith('import.'));
  // Each mount point the bundle was read from, with an event there (which medium was mounted then: media-sessions.ts).
  const media = [
    ...new Map(events.filter((e) => e.media !== null).map((e) => [e.media as string, e.seq] as const)).entries(),
  ];
  const signers = rec ? (JSON.parse(rec.signers) as string[]) : [];
  const sigCheck = checks.find((c) => c.kind === 'check.signatures');
  const volumeChecks = events.filter((c) => /volume|digest/.test(c.kind));
  const images = imagesOfBundle(db, id);
  // A refused bundle has no record: its station and sequence are what its statement named, as the refusal recorded.
  const station = rec?.station ?? events.find((e) => e.station)?.station ?? 'unknown';
  const sequence = rec?.sequence ?? claimedSequence(events);
  const body = html`<div class="grid">
      <section
        class="panel ${decisions.some((d) => d.outcome === 'accepted') ? 'ok' : decisions.some((d) => d.outcome === 'refused') ? 'bad' : ''}"
        id="decision"
      >
        <h2>Decision</h2>
        ${decisions.length ? decisions.map((d) => html`<p>${outcomeBadge(d.outcome)} ${d.at} — ${d.message}</p>`) : html`<p class="muted">No import decision recorded (verify only?).</p>`}
      </section>
      <section class="panel" id="facts">
        <h2>Bundle</h2>
        <dl>
          <dt>Id</dt>
          <dd class="mono">${id}</dd>
          <dt>Export station</dt>
          <dd>${station}</dd>
          ${
            !rec && sequence !== null
              ? html`<dt>Sequence (claimed)</dt>
                  <dd>${sequence}</dd>`
              : ''
          }
          ${
            rec
              ? html`<dt>Sequence</dt>
                  <dd>${rec.sequence}</dd>
                  <dt>Created</dt>
                  <dd>${rec.created}</dd>
                  <dt>Expires</dt>
                  <dd>${rec.expires}</dd>
                  <dt>Imported</dt>
                  <dd>${rec.imported_at}</dd>
                  <dt>Statement sha256</dt>
                  <dd class="mono">${rec.statement_sha256}</dd>`
              : ''
          }
        </dl>
      </section>
      <section class="panel" id="signers">
        <h2>Signers</h2>
        ${
          signers.length
            ? html`<ul>
                ${signers.map((s) => html`<li>${s}</li>`)}
              </ul>`
            : sigCheck
              ? html`<p>${outcomeBadge(sigCheck.outcome)} ${sigCheck.message}</p>`
              : html`<p class="muted">The signatures were not verified (the bundle was refused before).</p>`
        }
      </section>
      <section class="panel" id="volumes">
        <h2>Volumes and media</h2>
        ${volumeChecks.map((c) => html`<p>${outcomeBadge(c.outcome)} ${c.message}</p>`)}
        <p>
          Came on:
          ${media.length ? media.map(([m, seq]) => html`${mediaLink(m, seq)} `) : html`<span class="muted">no media recorded</span>`}
        </p>
      </section>
    </div>
    <h2>Checks</h2>
    <table id="checks">
      <thead>
        <tr>
          <th>Check</th>
          <th>Result</th>
          <th>Reason</th>
        </tr>
      </thead>
      <tbody>
        ${checks.map(
          (c) =>
            html`<tr data-check="${c.kind.slice(6)}" data-outcome="${c.outcome}"><td>${c.kind.slice(6)}</td><td>${outcomeBadge(c.outcome)}</td><td${c.outcome === 'fail' ? html` class="reason"` : ''}>${c.code ? `${c.code}: ` : ''}${c.message}</td></tr>`,
        )}
      </tbody>
    </table>
    ${
      images.length
        ? html`<h2>Images</h2>
            <table>
              <thead>
                <tr>
                  <th>Artifact</th>
                  <th>Image</th>
                  <th>Size</th>
                  <th>sha256</th>
                </tr>
              </thead>
              <tbody>
                ${images.map(
                  (i) =>
                    html`<tr>
                      <td>${artifactLink(subjectName({ name: i.name, version: i.artifact_version }))}</td>
                      <td class="mono">${i.id}</td>
                      <td>${humanSize(i.size)}</td>
                      <td class="mono">${i.sha256}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
        : ''
    }
    ${bundleContainerImages(db, id)}
    <h2>Every event of this bundle</h2>
    ${eventsTable(events, { showBundle: false })}`;
  const refused = !rec && decisions.some((d) => d.outcome === 'refused');
  return layout({
    title: `Bundle ${station}${sequence !== null ? ` #${sequence}` : ''}${refused ? ' (refused)' : ''}`,
    user,
    body,
  });
}

export function artifactsPage(db: Db, user: PageUser): string {
  const rows = artifactNames(db);
  const body = rows.length
    ? html`<table>
        <thead>
          <tr>
            <th>Artifact</th>
            <th>Versions</th>
            <th>Latest</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            (r) =>
              html`<tr>
                <td>${artifactLink(r.name)}</td>
                <td>${r.versions}</td>
                <td>${r.latest}</td>
              </tr>`,
          )}
        </tbody>
      </table>`
    : html`<p class="muted">No artifact imported yet.</p>`;
  return layout({ title: 'Artifacts', user, body, active: 'artifacts' });
}

export function artifactPage(db: Db, user: PageUser, name: string): string | null {
  const rows = artifactImages(db, name);
  const events = artifactEvents(db, name);
  const retired = retiredImages(db, 500, name);
  if (rows.length === 0 && events.length === 0 && retired.length === 0) return null;
  const body = html`<h2>Version history</h2>
    <table id="versions">
      <thead>
        <tr>
          <th>Version</th>
          <th>Imported</th>
          <th>Bundle</th>
          <th>Image</th>
          <th>Size</th>
          <th>sha256</th>
          <th>State</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (r) =>
            html`<tr>
              <td>${r.artifact_version}</td>
              <td>${r.created_at}</td>
              <td>${bundleLink(r.bundle_id)}</td>
              <td class="mono">${r.id}</td>
              <td>${humanSize(r.size)}</td>
              <td class="mono">${r.sha256}</td>
              <td>${r.status}${r.os_hidden ? ' (hidden: superseded)' : ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${
      retired.length
        ? html`<h2>Retired</h2>
            <p class="muted">No longer in the store: not served, not in the receipts' inventory.</p>
            <table id="retired">
              <thead>
                <tr>
                  <th>Version</th>
                  <th>Retired</th>
                  <th>Why</th>
                  <th>Size</th>
                  <th>sha256</th>
                </tr>
              </thead>
              <tbody>
                ${retired.map(
                  (r) =>
                    html`<tr>
                      <td>${r.version}</td>
                      <td>${r.retired_at}</td>
                      <td>${RETIRED_WHY[r.reason]}</td>
                      <td>${humanSize(r.size)}</td>
                      <td class="mono">${r.sha256}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
        : ''
    }
    <h2>Events</h2>
    ${eventsTable(events)}`;
  return layout({ title: `Artifact ${name}`, user, body, active: 'artifacts' });
}

export function mediaListPage(db: Db, user: PageUser): string {
  const rows = mediaByIdentity(db);
  const body = rows.length
    ? html`<p class="muted">
          Each medium is named by what it is (its filesystem UUID, else its USB serial), wherever it was mounted;
          folders imported with the CLI by their path.
        </p>
        <table>
          <thead>
            <tr>
              <th>Medium</th>
              <th>Mounted at</th>
              <th>First seen</th>
              <th>Last seen</th>
              <th>Events</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(
              (r) =>
                html`<tr>
                  <td><a href="/audit/media/view${qs({ id: r.key })}">${r.label}</a></td>
                  <td class="mono">${r.mounts.join(', ')}</td>
                  <td>${r.first}</td>
                  <td>${r.last}</td>
                  <td>${r.events}</td>
                </tr>`,
            )}
          </tbody>
        </table>`
    : html`<p class="muted">No media seen yet.</p>`;
  return layout({ title: 'Media', user, body, active: 'media' });
}

export function mediaPage(db: Db, user: PageUser, key: string): string | null {
  const m = mediumEvents(db, key);
  const events = m.events;
  if (events.length === 0) return null;
  const identity = events.filter((e) => e.kind.startsWith('media.'));
  const bundles = [...new Set(events.map((e) => e.bundle_id).filter((b): b is string => b !== null))];
  const body = html`<div class="grid">
      <section class="panel" id="identity">
        <h2>Device and filesystem</h2>
        <p>${m.label}; mounted at <span class="mono">${m.mounts.join(', ')}</span></p>
        ${
          identity.length
            ? identity.map(
                (e) =>
                  html`<p>${e.kind}: ${e.message}</p>
                    ${detailsList(e.details)}`,
              )
            : html`<p class="muted">
                No device identity recorded for this media (imported from a folder with the CLI).
              </p>`
        }
      </section>
      <section class="panel" id="carried">
        <h2>What it carried</h2>
        ${
          bundles.length
            ? html`<ul>
                ${bundles.map((b) => html`<li>${bundleLink(b)}</li>`)}
              </ul>`
            : html`<p class="muted">No bundle.</p>`
        }
      </section>
    </div>
    <h2>Events</h2>
    ${eventsTable(events)}`;
  return layout({ title: `Media ${m.label}`, user, body, active: 'media' });
}
