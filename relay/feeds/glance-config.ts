/**
 * The `glance` feed kind: images from an outside Glance (a staging cloud's), selected by name (exact or glob), tags
 * and properties, only `active` ones. Declared like the other feeds; the vendor's trust material is its image-signing
 * certificates, pinned by the uuid images name them with (`img_signature_certificate_uuid`).
 *
 *   - name: staging-ubuntu
 *     vendor: canonical
 *     product: ubuntu-24.04
 *     kind: glance
 *     endpoint: https://glance.staging.example:9292
 *     tokenFile: staging.token          # or tokenEnv: STAGING_TOKEN; never the token itself
 *     # or, instead of a token, a Keystone application credential (a token is asked for at each fetch, and again
 *     # before it expires; without `endpoint` the image endpoint is taken from the Keystone catalog):
 *     # keystone: { authUrl: https://keystone.staging.example:5000/v3, applicationCredentialId: ID,
 *     #             applicationCredentialSecretFile: staging.secret, region: RegionOne }
 *     matchName: 'ubuntu-24.04-*'
 *     matchTags: [release]
 *     matchProperties: { os_distro: ubuntu }
 *     versionProperty: version          # else versionPattern on the image name
 *     certificates: { 6b8c1f8e-...: vendor-signing.pem }
 *
 * `requireSignature` defaults to true; a feed pinning no certificate must say `requireSignature: false`, and then
 * brings images with provenance-only evidence (an inside policy pinning vendor keys refuses them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { CONTAINER_FORMATS, DISK_FORMATS, propertyKey } from '../../sneakernet/statement.js';
import { GLANCE_IMAGE_ID } from '../../sneakernet/evidence.js';
import { readCertificate, type PinnedCertificate } from '../../keys/glance-signature.js';
import { checkVersionPattern, commonFeedFields } from './common.js';

/** Image properties carried to the site by default (booting needs the hw_* ones). */
export const DEFAULT_COPY_PROPERTIES = ['architecture', 'os_distro', 'os_version', 'os_type', 'hw_*'];

const glob = z.string().min(1).max(255);

const httpUrl = z
  .string()
  .max(2048)
  .regex(/^https?:\/\/[^\s?#]+$/i, 'an http(s):// URL without query or fragment')
  .refine((u) => URL.canParse(u), 'not a URL');

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'an environment variable name');

/** A Keystone v3 application credential (what `openstack application credential create` gives). */
export const keystoneAuthSchema = z
  .strictObject({
    /** The Keystone v3 URL (`OS_AUTH_URL`); `/v3` is added when missing. */
    authUrl: httpUrl,
    applicationCredentialId: z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, 'an application credential id'),
    /** A file holding the secret (read at each fetch; made absolute when declared). */
    applicationCredentialSecretFile: z.string().min(1).max(4096).optional(),
    /** An environment variable holding it. */
    applicationCredentialSecretEnv: envName.optional(),
    applicationCredentialSecret: z
      .never({ error: 'a feed file never holds a secret: name a file or an environment variable' })
      .optional(),
    /** Which catalog endpoint of type `image` (when the feed gives no `endpoint`). */
    region: z.string().min(1).max(255).optional(),
    interface: z.enum(['public', 'internal', 'admin']).default('public'),
  })
  .superRefine((k, ctx) => {
    const given = [k.applicationCredentialSecretFile, k.applicationCredentialSecretEnv].filter((x) => x !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['applicationCredentialSecretFile'],
        message: 'give applicationCredentialSecretFile or applicationCredentialSecretEnv (one of them)',
      });
    }
  });

export type KeystoneAuth = z.output<typeof keystoneAuthSchema>;

export const glanceFeedSchema = z
  .strictObject({
    ...commonFeedFields,
    kind: z.literal('glance'),
    /** The Glance base URL (what `openstack --os-image-url` takes), http(s); from the Keystone catalog if absent. */
    endpoint: httpUrl.optional(),
    /** Authenticate with Keystone (instead of a token file or variable). */
    keystone: keystoneAuthSchema.optional(),
    /** A file holding the token sent as X-Auth-Token (read at each fetch; made absolute when declared). */
    tokenFile: z.string().min(1).max(4096).optional(),
    /** An environment variable holding that token. */
    tokenEnv: envName.optional(),
    token: z
      .never({
        error: 'a feed file never holds a token: name a file (tokenFile) or an environment variable (tokenEnv)',
      })
      .optional(),
    /** The image name: exact, or a glob. */
    matchName: glob.default('*'),
    /** Tags the image must all carry. */
    matchTags: z.array(z.string().min(1).max(255)).max(32).default([]),
    /** Properties the image must all have, with these values. */
    matchProperties: z.record(propertyKey, z.string().max(1024)).default({}),
    /** Which images to list (Glance's own default when absent: public, shared with and owned by the token's project). */
    visibility: z.enum(['public', 'private', 'shared', 'community', 'all']).optional(),
    /** The image property holding the version (`version`, `os_version`...); else `versionPattern` on the name. */
    versionProperty: propertyKey.optional(),
    /** The vendor's image-signing certificates, by the uuid images name them with: a PEM/DER file or inline PEM. */
    certificates: z.record(z.string().regex(GLANCE_IMAGE_ID, 'a UUID'), z.string().min(1)).default({}),
    /** Refuse unsigned images (default true; false is needed, and allowed, only when said). */
    requireSignature: z.boolean().optional(),
    /** Globs on the image's own properties carried to the site (img_signature* never: the site signs again). */
    copyProperties: z.array(glob).max(64).default(DEFAULT_COPY_PROPERTIES),
    /** Default: the image's own formats. */
    diskFormat: z.enum(DISK_FORMATS).optional(),
    containerFormat: z.enum(CONTAINER_FORMATS).optional(),
    /** Glance properties set on the artifact (over the copied ones). */
    properties: z.record(z.string(), z.string()).default({}),
  })
  .superRefine((f, ctx) => {
    if (f.tokenFile !== undefined && f.tokenEnv !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['tokenEnv'], message: 'give tokenFile or tokenEnv, not both' });
    }
    if (f.keystone !== undefined && (f.tokenFile !== undefined || f.tokenEnv !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['keystone'],
        message: 'give keystone or a token (tokenFile, tokenEnv), not both',
      });
    }
    if (f.endpoint === undefined && f.keystone === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['endpoint'],
        message: 'give the Glance endpoint, or keystone to take it from the catalog',
      });
    }
    if (Object.keys(f.matchProperties).length > 32) {
      ctx.addIssue({ code: 'custom', path: ['matchProperties'], message: 'at most 32 properties' });
    }
    if (Object.keys(f.certificates).length > 32) {
      ctx.addIssue({ code: 'custom', path: ['certificates'], message: 'at most 32 certificates' });
    }
    if (Object.keys(f.certificates).length === 0 && f.requireSignature !== false) {
      ctx.addIssue({
        code: 'custom',
        path: ['certificates'],
        message:
          'a glance feed pins the vendor certificates (certificates: {UUID: FILE}; --certificate UUID=FILE), or says requireSignature: false (--allow-unsigned)',
      });
    }
    checkVersionPattern(f.versionPattern, ctx);
  });

export type GlanceFeedConfig = z.output<typeof glanceFeedSchema>;

/** A glance feed's config with its endpoint known (given, or found in the Keystone catalog). */
export type ResolvedGlanceConfig = GlanceFeedConfig & { endpoint: string };

/** Where a glance feed reads from, for operators: the endpoint, or the Keystone that will name it. */
export const glanceSource = (c: GlanceFeedConfig): string =>
  c.endpoint ?? `the image endpoint in the catalog of ${c.keystone?.authUrl ?? '?'}`;

/** A certificate pinned for a glance feed, under the uuid its images name. */
export interface PinnedGlanceCertificate extends PinnedCertificate {
  uuid: string;
}

/** Whether unsigned images are refused. */
export const requiresSignature = (c: GlanceFeedConfig): boolean => c.requireSignature ?? true;

function readMaterial(spec: string, baseDir: string, what: string): Buffer {
  if (spec.startsWith('-----BEGIN')) return Buffer.from(spec, 'utf8');
  const file = path.resolve(baseDir, spec);
  try {
    if (fs.statSync(file).size > 1024 * 1024) throw new EcluseError('E_INPUT', `${what} ${file} is larger than 1 MiB`);
    return fs.readFileSync(file);
  } catch (e) {
    if (e instanceof EcluseError) throw e;
    throw new EcluseError('E_NOT_FOUND', `cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/** Reads and pins the certificates a glance feed names; an expired one is refused now rather than at each fetch. */
export function pinCertificates(c: GlanceFeedConfig, baseDir: string, now = new Date()): PinnedGlanceCertificate[] {
  return Object.entries(c.certificates).map(([uuid, spec]) => {
    const what = `feed ${c.name}: certificate ${uuid}`;
    const cert = readCertificate(readMaterial(spec, baseDir, 'certificate'), what);
    if (new Date(cert.notAfter) < now) throw new EcluseError('E_KEY', `${what} expired on ${cert.notAfter}`);
    return { uuid: uuid.toLowerCase(), ...cert };
  });
}

/** The config as stored: secret files made absolute (they are read at each fetch, from wherever fetch runs). */
export function withAbsolutePaths(c: GlanceFeedConfig, baseDir: string): GlanceFeedConfig {
  const k = c.keystone;
  return {
    ...c,
    ...(c.tokenFile === undefined ? {} : { tokenFile: path.resolve(baseDir, c.tokenFile) }),
    ...(k?.applicationCredentialSecretFile === undefined
      ? {}
      : {
          keystone: { ...k, applicationCredentialSecretFile: path.resolve(baseDir, k.applicationCredentialSecretFile) },
        }),
  };
}

/** The token to send, read now from the file or environment variable the feed names; undefined without one. */
export function readToken(c: GlanceFeedConfig): string | undefined {
  let token: string | undefined;
  if (c.tokenEnv !== undefined) {
    token = process.env[c.tokenEnv];
    if (token === undefined || token.trim() === '') {
      throw new EcluseError('E_FEED', `feed ${c.name}: the environment variable ${c.tokenEnv} holds no token`);
    }
  } else if (c.tokenFile !== undefined) {
    let size: number;
    try {
      size = fs.statSync(c.tokenFile).size;
      token = size > 16 * 1024 ? '' : fs.readFileSync(c.tokenFile, 'utf8');
    } catch (e) {
      throw new EcluseError(
        'E_FEED',
        `feed ${c.name}: cannot read the token file ${c.tokenFile}: ${(e as Error).message}`,
      );
    }
    if (size > 16 * 1024) {
      throw new EcluseError(
        'E_FEED',
        `feed ${c.name}: cannot read the token file ${c.tokenFile}: it is larger than 16 KiB`,
      );
    }
  } else return undefined;
  token = token.trim();
  if (token === '' || !/^[\x21-\x7e]+$/.test(token)) {
    throw new EcluseError('E_FEED', `feed ${c.name}: the token is empty or not printable ASCII on one line`);
  }
  return token;
}
