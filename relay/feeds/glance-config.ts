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
import { CONTAINER_FORMATS, DISK_FORMATS, GLANCE_IMAGE_ID } from '../../sneakernet/statement.js';
import { readCertificate, type PinnedCertificate } from '../../keys/glance-signature.js';
import { checkVersionPattern, commonFeedFields } from './common.js';

/** Image properties carried to the site by default (booting needs the hw_* ones). */
export const DEFAULT_COPY_PROPERTIES = ['architecture', 'os_distro', 'os_version', 'os_type', 'hw_*'];

const glob = z.string().min(1).max(255);
const propertyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : - only');

export const glanceFeedSchema = z
  .strictObject({
    ...commonFeedFields,
    kind: z.literal('glance'),
    /** The Glance base URL (what `openstack --os-image-url` takes), http(s). */
    endpoint: z
      .string()
      .max(2048)
      .regex(/^https?:\/\/[^\s?#]+$/i, 'an http(s):// URL without query or fragment'),
    /** A file holding the token sent as X-Auth-Token (read at each fetch; made absolute when declared). */
    tokenFile: z.string().min(1).max(4096).optional(),
    /** An environment variable holding that token. */
    tokenEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'an environment variable name')
      .optional(),
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
    try {
      new URL(f.endpoint);
    } catch {
      ctx.addIssue({ code: 'custom', path: ['endpoint'], message: 'not a URL' });
    }
    checkVersionPattern(f.versionPattern, ctx);
  });

export type GlanceFeedConfig = z.output<typeof glanceFeedSchema>;

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

/** The config as stored: `tokenFile` made absolute (it is read at each fetch, from wherever fetch runs). */
export function withAbsolutePaths(c: GlanceFeedConfig, baseDir: string): GlanceFeedConfig {
  return c.tokenFile === undefined ? c : { ...c, tokenFile: path.resolve(baseDir, c.tokenFile) };
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
    try {
      if (fs.statSync(c.tokenFile).size > 16 * 1024) throw new Error('it is larger than 16 KiB');
      token = fs.readFileSync(c.tokenFile, 'utf8');
    } catch (e) {
      throw new EcluseError(
        'E_FEED',
        `feed ${c.name}: cannot read the token file ${c.tokenFile}: ${(e as Error).message}`,
      );
    }
  } else return undefined;
  token = token.trim();
  if (token === '' || !/^[\x21-\x7e]+$/.test(token)) {
    throw new EcluseError('E_FEED', `feed ${c.name}: the token is empty or not printable ASCII on one line`);
  }
  return token;
}
