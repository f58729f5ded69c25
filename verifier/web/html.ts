/**
 * Server-rendered HTML without a template engine: `html\`...\`` escapes every interpolated value unless it is already
 * `Safe` (the result of another `html` call), and arrays are joined. No value reaches the page unescaped.
 */
export class Safe {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function part(v: unknown): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Safe) return v.text;
  if (Array.isArray(v)) return v.map(part).join('');
  return esc(v);
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Safe {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += part(v) + (strings[i + 1] ?? '');
  });
  return new Safe(out);
}

/** `?a=1&b=2` from the non-empty entries. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export interface PageUser {
  name: string;
  role: string;
  via: 'loopback' | 'session' | 'token';
}

export function layout(o: { title: string; user: PageUser; body: Safe; active?: string }): string {
  const nav = [
    ['timeline', '/audit/', 'Timeline'],
    ['log', '/audit/log', 'Log integrity'],
    ['media', '/audit/media', 'Media'],
    ['artifacts', '/audit/artifacts', 'Artifacts'],
    ['container-images', '/audit/container-images', 'Container images'],
  ] as const;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${o.title} · écluse audit</title>
        <link rel="stylesheet" href="/audit/style.css" />
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/audit/">écluse audit</a>
          <nav>
            ${nav.map(([k, href, label]) => html`<a href="${href}" ${o.active === k ? html` aria-current="page"` : ''}>${label}</a>`)}
          </nav>
          <div class="who">
            ${o.user.name} <span class="role">${o.user.role}</span>${
              o.user.via === 'session'
                ? html`<form method="post" action="/audit/logout" class="inline">
                    <button type="submit" id="logout">Log out</button>
                  </form>`
                : html` <a href="/audit/login">Log in</a>`
            }
          </div>
        </header>
        <main>
          <h1>${o.title}</h1>
          ${o.body}
        </main>
        <footer>
          Read-only view of the import station's tamper-evident audit log. Printed ${new Date().toISOString()}.
        </footer>
      </body>
    </html> `.text;
}

/** Bytes as an operator reads them: `544 KiB`, `1.2 GiB` (binary units, one decimal from MiB up). */
export function humanSize(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${u === 1 || v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export function outcomeBadge(outcome: string): Safe {
  return html`<span class="badge ${`o-${outcome.replace(/[^a-z]/g, '')}`}">${outcome}</span>`;
}
