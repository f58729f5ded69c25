/**
 * The shared setup of the oci-image import tests (test/e2e/oci-import.test.ts, test/e2e/oci-import-refusals.test.ts):
 * one world per test file with two bundles written by `ecluse export` (sequence 1 and 2, a small VM image each) that
 * the tests rewrite into bundles of container images (test/helpers/oci-bundle.ts), the two-platform image `app`, a
 * vendor whose cosign key a policy can pin, and the policy and bundle steps both files take.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { loadSigner, type LoadedSigner } from '../../keys/signer.js';
import { makeSigstoreVendor } from '../relay/vendor-fixtures.js';
import { simpleSigningPayload } from './oci/cosign.js';
import { rewriteAsOciBundle, type OciArtifactSpec } from './oci-bundle.js';
import { buildImage, type TestImage } from './oci-image.js';
import { bundleOn, copyMedia, ecluseOk, makeKeys, PASSPHRASE, world, type World } from './world.js';

export const vendor = makeSigstoreVendor();

export const TWO_PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];

export const vmRule = { name: 'vm', artifacts: ['seed'], types: ['vm-image'] };

export function spec(image: TestImage, version: string, more: Partial<OciArtifactSpec> = {}): OciArtifactSpec {
  return { image, name: 'acme-app', version, repository: 'acme/app', tag: version, ...more };
}

/** cosign evidence as the export station carries it: the simple-signing payload naming `digest`, signed by the vendor. */
export async function cosignEvidence(digest: string): Promise<Record<string, unknown>> {
  const payload = simpleSigningPayload(digest, 'vendor.example:5000/acme/app');
  return {
    kind: 'cosign',
    payload: payload.toString('base64'),
    bundle: Buffer.from(await vendor.signBlob(payload)).toString('base64'),
  };
}

interface Made {
  w: World;
  alice: LoadedSigner;
  first: string;
  second: string;
  app: TestImage;
}

/**
 * Registers the hooks of a test file (beforeAll: make the world, export the two bundles, build `app`; afterAll: clean
 * up) and returns what its tests build on. Call it once, at the top level of the file. With `importFirst`, beforeAll
 * also imports the first bundle rewritten to carry `app` as acme-app 1.4.0 and records its statement's sha256, as the
 * first test of oci-import.test.ts does with its checks.
 */
export function ociWorld(o: { importFirst?: boolean } = {}) {
  let w: World | undefined;
  let made: Made | undefined;

  /** What beforeAll made (so only inside a test). */
  function m(): Made {
    if (!made) throw new Error('the oci world is made in beforeAll: use it inside a test');
    return made;
  }

  const h = {
    get w() {
      return m().w;
    },
    get alice() {
      return m().alice;
    },
    get first() {
      return m().first;
    },
    get second() {
      return m().second;
    },
    get app() {
      return m().app;
    },
    /** The sha256 of the statement of the accepted first bundle (the second names it as its predecessor). */
    firstStatement: '',

    /** A copy of the second exported bundle rewritten into `specs` (chained to the accepted first one). */
    async secondBundle(name: string, specs: OciArtifactSpec[]): Promise<string> {
      const media = copyMedia(m().second, m().w.path(name));
      await rewriteAsOciBundle(bundleOn(media), m().alice, specs, (s) => {
        const previous = (s.predicate as { previous: { statementSha256: string } }).previous;
        previous.statementSha256 = h.firstStatement;
      });
      return media;
    },

    async applyPolicy(rules: unknown[]): Promise<void> {
      const file = m().w.path(`policy-${crypto.randomUUID()}.json`);
      fs.writeFileSync(file, JSON.stringify({ version: 1, rules }));
      await ecluseOk(['policy', 'apply', file, '--json'], { home: m().w.inside });
    },
  };

  beforeAll(async () => {
    w = await world({ keys: await makeKeys(fs.mkdtempSync('/tmp/ecluse-oci-keys-')) });
    const alice = await loadSigner(w.keys.signer('alice'), () => Promise.resolve(PASSPHRASE));
    await w.addImage('seed', '1', 4096);
    const first = w.path('m1');
    await w.exportTo(first);
    await w.addImage('seed', '2', 4096);
    const second = w.path('m2');
    await w.exportTo(second);
    const app = buildImage({ platforms: TWO_PLATFORMS, layers: 3, layerSize: 20_000 });
    made = { w, alice, first, second, app };
    if (o.importFirst) {
      const media = copyMedia(first, w.path('good-1'));
      await rewriteAsOciBundle(bundleOn(media), alice, [spec(app, '1.4.0')]);
      const r = await w.importJson(media);
      if (r.code !== 0) throw new Error(`the first bundle (acme-app 1.4.0) was refused: ${r.stderr}`);
      h.firstStatement = (JSON.parse(r.stdout) as { bundle: { statementSha256: string } }).bundle.statementSha256;
    }
  });

  afterAll(() => w?.cleanup());

  return h;
}
