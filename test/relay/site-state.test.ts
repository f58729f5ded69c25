/**
 * What the export station makes of a site's receipt (issue 12): bundles accepted, refused (with the code) or missing
 * (the receipt's `gaps`), artifacts the site's policy refused (`refused[].artifacts`, E_NOT_ALLOWED) left out of the
 * next export unless forced in, the acknowledgement rule (a gap below the acknowledged bundle never blocks; what it
 * carried travels again), and `--replace` refusing a gap its successor already names. The receipts are recorded as
 * `relay receipt import` records a verified one (verification itself is tested in test/e2e/receipts.test.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EcluseError } from '../../sneakernet/errors.js';
import { inventoryLines, RECEIPT_TYPE, type Receipt } from '../../sneakernet/receipt.js';
import { addArtifact } from '../../relay/add.js';
import { openRelayHome, type RelayHome } from '../../relay/catalog.js';
import { recordExport } from '../../relay/chains.js';
import { planExport, type ExportRequest } from '../../relay/export-plan.js';
import { siteState } from '../../relay/site-state.js';

const SITE = 'site-a';
let root: string;
let home: RelayHome;
const ids: Record<string, { id: number; sha256: string }> = {};

async function add(name: string, version: string): Promise<void> {
  const file = path.join(root, `${name}-${version}`);
  fs.writeFileSync(file, randomBytes(2048));
  const r = await addArtifact(home, {
    file,
    name,
    version,
    diskFormat: 'raw',
    containerFormat: 'bare',
    properties: {},
    vendor: null,
  });
  ids[`${name}@${version}`] = { id: r.artifact.id, sha256: r.artifact.sha256 };
}

/** Bundle `sequence` of SITE as if written, carrying `carried`. */
function written(sequence: number, carried: string[]): string {
  const bundleId = `00000000-0000-4000-8000-${String(sequence).padStart(12, '0')}`;
  recordExport(
    home.db,
    {
      site: SITE,
      sequence,
      bundle_id: bundleId,
      statement_sha256: createHash('sha256').update(bundleId).digest('hex'),
      created: '2026-11-01T00:00:00Z',
      expires: '2099-01-01T00:00:00Z',
      media: '/media/usb0',
      volumes: 1,
      bytes: 1,
      statement: Buffer.from('{}'),
      media_bytes: 1,
    },
    carried.map((c) => ids[c]?.id ?? -1),
  );
  return bundleId;
}

let receipts = 0;
/** A receipt from SITE, recorded as `relay receipt import` records it. */
function receipt(o: {
  acknowledges: number;
  holds: string[];
  refused?: Receipt['refused'];
  gaps?: Array<{ sequence: number; refusedWith: string | null }>;
}): void {
  const artifacts = o.holds.map((h) => {
    const [name = '', version = ''] = h.split('@');
    return { name, version, sha256: ids[h]?.sha256 ?? '' };
  });
  const r: Receipt = {
    _type: RECEIPT_TYPE,
    site: SITE,
    number: ++receipts,
    issued: '2026-11-02T00:00:00Z',
    keyId: 'a'.repeat(64),
    stations: [
      {
        station: home.station,
        sequence: o.acknowledges,
        bundleId: `00000000-0000-4000-8000-${String(o.acknowledges).padStart(12, '0')}`,
        statementSha256: 'b'.repeat(64),
      },
    ],
    refused: o.refused ?? [],
    gaps: (o.gaps ?? []).map((g) => ({ station: home.station, ...g })),
    inventory: { sha256: createHash('sha256').update(inventoryLines(artifacts)).digest('hex'), artifacts },
  };
  home.db
    .prepare('INSERT INTO receipts (site, number, issued, acknowledged, payload, taken_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(SITE, r.number, r.issued, o.acknowledges, JSON.stringify(r), r.issued);
}

function request(o: Partial<ExportRequest> = {}): ExportRequest {
  return {
    mode: { kind: 'fresh' },
    site: SITE,
    media: [],
    mediaBytes: 1024 * 1024,
    signers: 1,
    expiresInMs: 86_400_000,
    all: false,
    force: false,
    includeRefused: false,
    noEvidence: false,
    noDelta: true,
    ...o,
  };
}

const names = (p: { artifacts: Array<{ name: string; version: string }> }) =>
  p.artifacts.map((a) => `${a.name}@${a.version}`);

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-site-state-'));
  home = openRelayHome(path.join(root, 'home'));
  receipts = 0;
  for (const [n, v] of [
    ['base', '1'],
    ['tools', '1'],
    ['base', '2'],
    ['forbidden', '1'],
  ] as const)
    await add(n, v);
});
afterEach(() => {
  home.db.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('a site with a gap below the acknowledged bundle', () => {
  it('names the gap, does not block, and carries again what the missing bundle carried', async () => {
    written(1, ['base@1']);
    written(2, ['tools@1']); // lost on the way: never arrived
    written(3, ['base@2']);
    receipt({ acknowledges: 3, holds: ['base@1', 'base@2'], gaps: [{ sequence: 2, refusedWith: null }] });
    const s = siteState(home, SITE);
    expect(s.bundles.map((b) => [b.sequence, b.fate])).toEqual([
      [1, 'accepted'],
      [2, 'missing'],
      [3, 'accepted'],
    ]);
    const { plan } = await planExport(home, request());
    expect(plan.refusal).toBeNull();
    expect(plan.sequence).toBe(4);
    expect(plan.previous?.sequence).toBe(3);
    expect(names(plan)).toEqual(['tools@1', 'forbidden@1']);
  });

  it('a gap refused with a code is named with it; --replace of that gap is refused, naming --resend', async () => {
    written(1, ['base@1']);
    written(2, ['tools@1']);
    written(3, ['base@2']);
    receipt({
      acknowledges: 3,
      holds: ['base@1', 'base@2'],
      gaps: [{ sequence: 2, refusedWith: 'E_DIGEST' }],
    });
    expect(siteState(home, SITE).bundles[1]).toMatchObject({ sequence: 2, fate: 'refused', code: 'E_DIGEST' });
    const e = await planExport(home, request({ mode: { kind: 'replace', sequence: 2 } })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(EcluseError);
    expect((e as EcluseError).code).toBe('E_USAGE');
    expect((e as EcluseError).message).toContain(`ecluse export --resend 2 --site ${SITE} --to MEDIA`);
  });
});

describe('bundles above the acknowledged one', () => {
  it('one no receipt speaks of blocks (E_UNACKNOWLEDGED) naming the exact commands, unless --force', async () => {
    written(1, ['base@1']);
    written(2, ['tools@1']);
    receipt({ acknowledges: 1, holds: ['base@1'] });
    const { plan } = await planExport(home, request());
    expect(plan.refusal?.code).toBe('E_UNACKNOWLEDGED');
    expect(plan.refusal?.message).toContain(`ecluse export --resend 2 --site ${SITE} --to MEDIA`);
    expect(plan.refusal?.message).toContain(`ecluse export --replace 2 --site ${SITE} --to MEDIA`);
    const forced = (await planExport(home, request({ force: true }))).plan;
    expect(forced.refusal).toBeNull();
    expect(forced.acknowledgement).toMatchObject({ acknowledged: 1, lastWritten: 2, forced: true });
    expect(names(forced)).toEqual(['base@2', 'forbidden@1']); // tools@1 is on its way in #2
  });

  it('one the site refused blocks with its code and --replace; --force chains past it and carries its content', async () => {
    written(1, ['base@1']);
    const two = written(2, ['tools@1']);
    receipt({
      acknowledges: 1,
      holds: ['base@1'],
      refused: [
        {
          at: '2026-11-02T00:00:00Z',
          code: 'E_DIGEST',
          bundleId: two,
          station: home.station,
          message: 'vol-0001.tar does not match',
          sequence: 2,
        },
      ],
    });
    const { plan } = await planExport(home, request());
    expect(plan.refusal?.code).toBe('E_UNACKNOWLEDGED');
    expect(plan.refusal?.message).toContain('E_DIGEST');
    expect(plan.refusal?.message).toContain(`ecluse export --replace 2 --site ${SITE} --to MEDIA`);
    const forced = (await planExport(home, request({ force: true }))).plan;
    expect(forced).toMatchObject({ sequence: 3, previous: { sequence: 2 }, refusal: null });
    expect(names(forced)).toEqual(['tools@1', 'base@2', 'forbidden@1']);
    const replaced = (await planExport(home, request({ mode: { kind: 'replace', sequence: 2 } }))).plan;
    expect(replaced).toMatchObject({ sequence: 2, previous: { sequence: 1 }, refusal: null });
    expect(replaced.replaces.map((r) => r.sequence)).toEqual([2]);
  });
});

describe('artifacts the site refused by policy', () => {
  it('are left out of the next export, saying so, unless --include-refused', async () => {
    written(1, ['base@1']);
    const two = written(2, ['tools@1', 'forbidden@1']);
    receipt({
      acknowledges: 1,
      holds: ['base@1'],
      refused: [
        {
          at: '2026-11-02T00:00:00Z',
          code: 'E_NOT_ALLOWED',
          bundleId: two,
          station: home.station,
          message: 'forbidden 1 is not admitted by the site policy',
          sequence: 2,
          artifacts: [{ name: 'forbidden', version: '1', sha256: ids['forbidden@1']?.sha256 ?? '', rule: null }],
        },
      ],
    });
    expect(siteState(home, SITE).refusedByPolicy).toMatchObject([
      { name: 'forbidden', version: '1', code: 'E_NOT_ALLOWED' },
    ]);
    const replaced = (await planExport(home, request({ mode: { kind: 'replace', sequence: 2 } }))).plan;
    expect(names(replaced)).toEqual(['tools@1', 'base@2']);
    expect(replaced.leftOut).toMatchObject([{ name: 'forbidden', version: '1', reason: 'refused by the site policy' }]);
    const forcedIn = (await planExport(home, request({ mode: { kind: 'replace', sequence: 2 }, includeRefused: true })))
      .plan;
    expect(names(forcedIn)).toEqual(['tools@1', 'base@2', 'forbidden@1']);
    expect(forcedIn.leftOut).toEqual([]);
  });
});
