/**
 * The real clients a site's users pull with, pointed at a registry on loopback (plain HTTP, so TLS verification off):
 * `skopeo inspect` / `skopeo copy` and `podman pull` with vfs storage in a private root and runroot (no daemon, no
 * overlay mounts, no network set-up, nothing of the machine's own container storage touched).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tool } from './tools.js';

export interface Inspected {
  /** The manifest digest the registry serves (sha256 of the raw manifest bytes). */
  digest: string;
  raw: Buffer;
  mediaType: string | undefined;
}

const authArgs = (flag: string, authFile: string | undefined) => (authFile ? [flag, authFile] : []);

/** `skopeo inspect --raw` of `ref` (docker://HOST/REPO:TAG): the manifest bytes and their digest. */
export async function skopeoInspectRaw(ref: string, o: { authFile?: string } = {}): Promise<Inspected> {
  const { stdout } = await tool('skopeo', [
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...authArgs('--authfile', o.authFile),
    ref,
  ]);
  const raw = Buffer.from(stdout, 'utf8');
  const mediaType = (JSON.parse(stdout) as { mediaType?: string }).mediaType;
  return { digest: `sha256:${crypto.createHash('sha256').update(raw).digest('hex')}`, raw, mediaType };
}

/** `skopeo inspect` (the image's summary for the platform asked, default the machine's): Digest, RepoTags, ... */
export async function skopeoInspect(
  ref: string,
  o: { authFile?: string; arch?: string } = {},
): Promise<{ Digest: string; RepoTags: string[]; Architecture: string; Os: string; Layers: string[] }> {
  const { stdout } = await tool('skopeo', [
    ...(o.arch ? ['--override-arch', o.arch] : []),
    'inspect',
    '--tls-verify=false',
    ...authArgs('--authfile', o.authFile),
    ref,
  ]);
  return JSON.parse(stdout) as {
    Digest: string;
    RepoTags: string[];
    Architecture: string;
    Os: string;
    Layers: string[];
  };
}

/**
 * `skopeo copy --multi-arch all --preserve-digests SRC oci:DIR:TAG`: returns the digest the OCI layout records for
 * TAG (that of the copied manifest, byte for byte).
 */
export async function skopeoCopyToOci(
  src: string,
  dir: string,
  tag: string,
  o: { authFile?: string } = {},
): Promise<string> {
  await tool('skopeo', [
    'copy',
    '--quiet',
    '--multi-arch',
    'all',
    '--preserve-digests',
    '--src-tls-verify=false',
    ...authArgs('--src-authfile', o.authFile),
    src,
    `oci:${dir}:${tag}`,
  ]);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const d = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!d) throw new Error(`skopeo wrote no ${tag} into ${dir}`);
  return d.digest;
}

export interface Podman {
  /** `podman pull` (for `arch`, default the machine's): resolves to the pulled image id. */
  pull(ref: string, o?: { arch?: string; authFile?: string }): Promise<string>;
  /** The digest podman recorded for the image it pulled as `ref` (the manifest or index digest). */
  digestOf(ref: string): Promise<string>;
  /** Runs `podman ARGS...` with the private storage options. */
  run(args: string[]): Promise<string>;
  /** Deletes the private storage. */
  cleanup(): void;
}

/** podman with vfs storage under `dir` (root, runroot, tmpdir, registries.conf and containers.conf of its own). */
export function privatePodman(dir: string): Podman {
  for (const d of ['root', 'run', 'tmp', 'home']) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o700 });
  const registries = path.join(dir, 'registries.conf');
  fs.writeFileSync(registries, 'unqualified-search-registries = []\n');
  const containersConf = path.join(dir, 'containers.conf');
  fs.writeFileSync(containersConf, '[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: path.join(dir, 'home'),
    XDG_RUNTIME_DIR: path.join(dir, 'run'),
    CONTAINERS_REGISTRIES_CONF: registries,
    CONTAINERS_CONF: containersConf,
    TMPDIR: path.join(dir, 'tmp'),
  };
  const base = [
    '--root',
    path.join(dir, 'root'),
    '--runroot',
    path.join(dir, 'run'),
    '--tmpdir',
    path.join(dir, 'tmp'),
    '--storage-driver',
    'vfs',
    '--cgroup-manager',
    'cgroupfs',
    '--events-backend',
    'file',
  ];
  const run = async (args: string[]) => (await tool('podman', [...base, ...args], { env })).stdout;
  return {
    run,
    async pull(ref, o = {}) {
      const out = await run([
        'pull',
        '--quiet',
        '--tls-verify=false',
        ...(o.arch ? ['--arch', o.arch] : []),
        ...authArgs('--authfile', o.authFile),
        ref,
      ]);
      return out.trim().split('\n').pop() ?? '';
    },
    async digestOf(ref) {
      return (await run(['image', 'inspect', '--format', '{{.Digest}}', ref])).trim();
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
