/**
 * Running the real container tools (Debian's skopeo, umoci, podman, docker-registry, htpasswd) from the tests: no
 * shell, a time limit, and an error that names the command and its stderr when one fails.
 */
import { execFile } from 'node:child_process';

export interface ToolResult {
  stdout: string;
  stderr: string;
}

/** Runs `cmd args...`; rejects with the command line, the exit status and stderr. */
export function tool(
  cmd: string,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        env: o.env ?? process.env,
        cwd: o.cwd,
        timeout: o.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        if (err) {
          const status = (err as NodeJS.ErrnoException & { code?: unknown }).code ?? err.message;
          reject(new Error(`${cmd} ${args.join(' ')} failed (${String(status)}): ${stderr.trim() || stdout.trim()}`));
        } else resolve({ stdout, stderr });
      },
    );
  });
}

/** The containers auth file (`auth.json` as podman, skopeo and buildah read it) for the given registries. */
export function containersAuthFile(creds: Record<string, { username: string; password: string }>): string {
  const auths: Record<string, { auth: string }> = {};
  for (const [host, c] of Object.entries(creds)) {
    auths[host] = { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') };
  }
  return JSON.stringify({ auths }, null, 2);
}
