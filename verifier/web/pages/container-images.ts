/**
 * The container images page (`/audit/container-images`): every OCI image the registry serves, as the artifacts page
 * lists VM images: what to pull (`repository:tag`), its version, the vendor's digest, the platforms carried, its
 * size, and the bundle it came in.
 */
import type { Db } from '../../db.js';
import { containerImages, containerImagesOfBundle, type ContainerImage } from '../../registry/images.js';
import { platformName } from '../../registry/platforms.js';
import { bundleLink } from '../components.js';
import { html, humanSize, layout, type PageUser, type Safe } from '../html.js';

/**
 * One table of container images: what to pull, its version, the vendor's digest, the platforms carried and the size,
 * then the columns only the full list has (the bundle it came in, when it was accepted).
 */
function imagesTable(id: string, rows: ContainerImage[], withBundle: boolean): Safe {
  return html`<table id="${id}">
    <thead>
      <tr>
        <th>Image</th>
        <th>Version</th>
        <th>Digest</th>
        <th>Platforms</th>
        <th>Size</th>
        ${
          withBundle
            ? html`<th>Bundle</th>
                <th>Accepted</th>`
            : ''
        }
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (r) =>
          html`<tr data-repository="${r.repository}">
            <td class="mono">${r.repository}:${r.tag}</td>
            <td>${r.version}</td>
            ${
              withBundle
                ? html`<td class="mono" title="${r.digest}">${r.digest.slice(0, 19)}…</td>`
                : html`<td class="mono">${r.digest}</td>`
            }
            <td>${r.platforms.length ? r.platforms.map(platformName).join(', ') : '—'}</td>
            <td>${humanSize(r.size)}</td>
            ${
              withBundle
                ? html`<td>${bundleLink(r.bundleId)}</td>
                    <td>${r.acceptedAt}</td>`
                : ''
            }
          </tr>`,
      )}
    </tbody>
  </table>`;
}

export function containerImagesPage(db: Db, user: PageUser): string {
  const rows = containerImages(db, 1000);
  const body = rows.length
    ? html`<p class="muted">
          Served by <code>ecluse serve --registry-listen HOST:PORT</code> as <code>HOST:PORT/REPOSITORY:TAG</code>, or
          by digest.
        </p>
        ${imagesTable('container-images', rows, true)}`
    : html`<p class="muted">No container image imported yet.</p>`;
  return layout({ title: 'Container images', user, body, active: 'container-images' });
}

/** The bundle page's section: the container images that bundle brought (nothing when none). */
export function bundleContainerImages(db: Db, bundleId: string): Safe | string {
  const rows = containerImagesOfBundle(db, bundleId);
  if (rows.length === 0) return '';
  return html`<h2>Container images</h2>
    ${imagesTable('bundle-container-images', rows, false)}`;
}
