/**
 * Test fixture for the embedded Glance API: a temporary import home with a catalog, image rows inserted directly
 * (as a verified bundle would leave them) with real files under store/images, and a server on 127.0.0.1:0.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { glanceTime, openDb, type Db, type ImageRow } from '../../verifier/db.js';
import { importHome } from '../../verifier/home.js';
import { startGlanceServer, type GlanceServer } from '../../verifier/glance/server.js';

export interface ImageSpec extends Partial<Omit<ImageRow, 'properties' | 'tags'>> {
  name: string;
  /** The image bytes; null for an image without data (queued). Default: some bytes derived from the name. */
  data?: Buffer | null;
  properties?: Record<string, string>;
  tags?: string[];
}

export interface GlanceFixture {
  home: string;
  db: Db;
  imagesDir: string;
  server: GlanceServer;
  url: string;
  /** The rows as inserted, in insertion order. */
  images: ImageRow[];
  /** The bytes of each image with data, by id. */
  data: Map<string, Buffer>;
  add(spec: ImageSpec): ImageRow;
  close(): Promise<void>;
}

let counter = 0;

export function insertImage(db: Db, imagesDir: string, spec: ImageSpec): { row: ImageRow; data: Buffer | null } {
  counter += 1;
  const id = spec.id ?? crypto.randomUUID();
  const data = spec.data === undefined ? Buffer.from(`image ${spec.name} #${counter}\n`.repeat(50)) : spec.data;
  const created = spec.created_at ?? glanceTime(new Date(Date.UTC(2025, 0, 1, 0, 0, counter)));
  let file: string | null = null;
  if (data) {
    file = `${id}.img`;
    fs.writeFileSync(path.join(imagesDir, file), data);
  }
  const { data: _data, properties, tags, ...rest } = spec;
  const row: ImageRow = {
    id,
    status: data ? 'active' : 'queued',
    visibility: 'shared',
    protected: 0,
    os_hidden: 0,
    checksum: data ? crypto.createHash('md5').update(data).digest('hex') : null,
    os_hash_algo: data ? 'sha512' : null,
    os_hash_value: data ? crypto.createHash('sha512').update(data).digest('hex') : null,
    size: data ? data.length : null,
    virtual_size: null,
    container_format: 'bare',
    disk_format: 'raw',
    min_disk: 0,
    min_ram: 0,
    owner: null,
    updated_at: created,
    file,
    origin: 'bundle',
    bundle_id: 'b-test',
    artifact_name: spec.name,
    artifact_version: '1.0.0',
    sha256: data ? crypto.createHash('sha256').update(data).digest('hex') : null,
    ...rest,
    created_at: created,
    properties: JSON.stringify(properties ?? { ecluse_bundle_id: 'b-test', ecluse_version: '1.0.0' }),
    tags: JSON.stringify(tags ?? []),
  };
  const cols = Object.keys(row) as (keyof ImageRow)[];
  db.prepare(`INSERT INTO images (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(row);
  return { row, data };
}

export async function glanceFixture(specs: ImageSpec[]): Promise<GlanceFixture> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-glance-'));
  const db = openDb(home);
  const { images: imagesDir, staging: stagingDir } = importHome(home);
  fs.mkdirSync(imagesDir, { recursive: true });
  const images: ImageRow[] = [];
  const data = new Map<string, Buffer>();
  const add = (spec: ImageSpec): ImageRow => {
    const r = insertImage(db, imagesDir, spec);
    images.push(r.row);
    if (r.data) data.set(r.row.id, r.data);
    return r.row;
  };
  specs.forEach(add);
  const server = await startGlanceServer({ db, imagesDir, stagingDir, host: '127.0.0.1', port: 0 });
  return {
    home,
    db,
    imagesDir,
    server,
    url: server.url,
    images,
    data,
    add,
    close: async () => {
      await server.close();
      db.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * A fixture for a whole test file: created in beforeAll and closed in afterAll. The object returned is filled in by
 * beforeAll, so the file can hold it in a const from the start and read its fields inside the tests.
 */
export function useGlanceFixture(specs: ImageSpec[]): GlanceFixture {
  const fx = {} as GlanceFixture;
  beforeAll(async () => {
    Object.assign(fx, await glanceFixture(specs));
  });
  afterAll(async () => {
    await fx.close?.();
  });
  return fx;
}
