/**
 * The export station's tables are read through their modules, every row checked: a damaged row is E_STORE naming the
 * table and the column, never a value of the wrong type passed on. A real relay home (SQLite file and blob store).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { artifactsByAge, artifactNamed } from '../../relay/artifacts.js';
import { openRelayHome, type RelayHome } from '../../relay/catalog.js';
import { chainOf } from '../../relay/chains.js';
import { listEvents, recordEvent } from '../../relay/events.js';
import { imageOf, recordImage } from '../../relay/images/catalog-images.js';
import { EcluseError } from '../../sneakernet/errors.js';

let dir: string;
let home: RelayHome;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-relay-rows-'));
  home = openRelayHome(dir);
});
afterEach(() => {
  home.db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function refusal(run: () => unknown): EcluseError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(EcluseError);
    return e as EcluseError;
  }
  throw new Error('expected a refusal');
}

function insertArtifact(size: unknown): void {
  home.db
    .prepare(
      `INSERT INTO artifacts (name, version, type, size, sha256, sha512, md5, disk_format, container_format, properties,
         vendor, source, added_at) VALUES ('debian-13', '1', 'vm-image', ?, ?, ?, ?, 'qcow2', 'bare', '{}', NULL, 'f', 'now')`,
    )
    .run(size, 'a'.repeat(64), 'b'.repeat(128), 'c'.repeat(32));
}

describe('relay tables', () => {
  it('reads artifacts with their types, and refuses one whose size is text (E_STORE, artifacts.size)', () => {
    insertArtifact(5);
    expect(artifactNamed(home.db, 'debian-13', '1')).toMatchObject({ size: 5, md5: 'c'.repeat(32), evidence: null });
    home.db.prepare("UPDATE artifacts SET size = 'five'").run();
    const e = refusal(() => artifactsByAge(home.db));
    expect(e.code).toBe('E_STORE');
    expect(e.context).toMatchObject({ check: 'catalog-row', table: 'artifacts', column: 'size' });
    expect(e.message).toMatch(/ecluse relay remove NAME@VERSION/);
  });

  it('refuses an export whose volume count is not a number (E_STORE, exports.volumes)', () => {
    home.db
      .prepare(
        `INSERT INTO exports (site, sequence, bundle_id, statement_sha256, created, expires, media, volumes, bytes)
         VALUES ('site-a', 1, 'b-1', 'ab', 'c', 'e', '/m', 'two', 10)`,
      )
      .run();
    const e = refusal(() => chainOf(home.db, 'site-a'));
    expect(e.code).toBe('E_STORE');
    expect(e.context).toMatchObject({ table: 'exports', column: 'volumes' });
  });

  it('parses the details of relay events, and refuses a kind it never writes', () => {
    recordEvent(home.db, 'export.written', { site: 'site-a', subject: '#1', details: { volumes: 2 } });
    expect(listEvents(home.db)).toMatchObject([{ kind: 'export.written', site: 'site-a', details: { volumes: 2 } }]);
    home.db.prepare("UPDATE relay_events SET kind = 'export.deleted'").run();
    const e = refusal(() => listEvents(home.db));
    expect(e.code).toBe('E_STORE');
    expect(e.context).toMatchObject({ table: 'relay_events', column: 'kind' });
  });

  it('reads an image with its platforms and blobs, and refuses one whose platforms are not JSON (E_STORE, images.platforms)', () => {
    const { artifact } = recordImage(home.db, {
      name: 'app',
      version: '1.0',
      reference: 'oci:/tmp/app:1.0',
      repository: 'acme/app',
      tag: '1.0',
      digest: `sha256:${'d'.repeat(64)}`,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      blobs: [{ digest: `sha256:${'d'.repeat(64)}`, size: 10, mediaType: 'application/vnd.oci.image.index.v1+json' }],
      size: 10,
      sha256: 'd'.repeat(64),
      sha512: 'e'.repeat(128),
      properties: {},
      vendor: null,
      evidence: null,
    });
    expect(imageOf(home.db, artifact.id)).toMatchObject({ repository: 'acme/app', platforms: [{ os: 'linux' }] });
    home.db.prepare("UPDATE images SET platforms = 'linux/amd64'").run();
    const e = refusal(() => imageOf(home.db, artifact.id));
    expect(e.code).toBe('E_STORE');
    expect(e.context).toMatchObject({ check: 'catalog-row', table: 'images', column: 'platforms' });
    expect(e.message).toMatch(/ecluse relay remove NAME@VERSION/);
  });
});
