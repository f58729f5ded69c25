/**
 * The real `skopeo` fetches images: `skopeo copy --multi-arch all --preserve-digests SRC dir:FOLDER` into a private
 * folder. The `dir:` transport stores every manifest exactly as the registry served it (any media type, no
 * conversion), so the vendor's digests are preserved by construction; écluse checks them anyway (relay/images/fetch.ts).
 */
import { spawn } from 'node:child_process';
import { EcluseError } from '../../sneakernet/errors.js';
import { isLoopback, type ImageReference } from './reference.js';

export interface SkopeoOptions {
  authfile?: string | undefined;
  insecureRegistry?: boolean | undefined;
  /** The skopeo program (tests and packagers may point elsewhere); default `skopeo` on PATH. */
  program?: string | undefined;
  /** Aborting kills skopeo (Ctrl-C). */
  signal?: AbortSignal | undefined;
}

/** The last meaningful line skopeo printed: its `msg="…"` when it logged one. */
function lastLine(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const last = lines[lines.length - 1] ?? '';
  const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(last);
  return (msg?.[1] ?? last).replace(/\\"/g, '"').slice(0, 600);
}

/** Runs skopeo with `args`; resolves with stdout, refuses with E_FEED naming what skopeo said. */
export function runSkopeo(args: string[], what: string, o: SkopeoOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(o.program ?? 'skopeo', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(o.signal ? { signal: o.signal } : {}),
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      if (out.length < 1024 * 1024) out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-64 * 1024);
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (o.signal?.aborted) {
        reject(o.signal.reason instanceof EcluseError ? o.signal.reason : e);
        return;
      }
      reject(
        new EcluseError(
          'E_FEED',
          e.code === 'ENOENT'
            ? 'skopeo is not installed (apt install skopeo): écluse fetches images with it'
            : `skopeo could not be run: ${e.message}`,
          { check: 'skopeo' },
        ),
      );
    });
    child.on('close', (code, signal) => {
      if (o.signal?.aborted) return; // rejected by the 'error' event
      if (code === 0) resolve(out);
      else {
        const line = lastLine(err) || (signal ? `killed by ${signal}` : `exit status ${String(code)}`);
        reject(
          new EcluseError(
            'E_FEED',
            `${what}: skopeo failed: ${line}; check the reference, that its registry or folder is reachable from this station, and the credentials (--authfile)`,
            { check: 'skopeo' },
          ),
        );
      }
    });
  });
}

/** The source options of `skopeo copy` for `ref`: auth file, and TLS off only for loopback or an insecure registry. */
export function sourceOptions(ref: ImageReference, o: SkopeoOptions): string[] {
  const args: string[] = [];
  if (ref.transport !== 'docker') return args;
  if (o.authfile) args.push('--src-authfile', o.authfile);
  if (o.insecureRegistry || isLoopback(ref.registry)) args.push('--src-tls-verify=false');
  return args;
}

/**
 * Copies `source` into the private folder `dir` with the vendor's digests preserved: every platform (`all`), or an
 * index alone (`index-only`: a single manifest is still copied whole).
 */
export async function copyToDir(
  source: string,
  ref: ImageReference,
  dir: string,
  o: SkopeoOptions,
  multiArch: 'all' | 'index-only' = 'all',
): Promise<void> {
  await runSkopeo(
    [
      'copy',
      '--quiet',
      '--retry-times',
      '3',
      '--multi-arch',
      multiArch,
      '--preserve-digests',
      '--remove-signatures',
      ...sourceOptions(ref, o),
      source,
      `dir:${dir}`,
    ],
    `fetching ${source}`,
    o,
  );
}
