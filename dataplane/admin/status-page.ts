/**
 * The status page at `/` of the admin port: static HTML, CSS and one script (built from
 * dataplane/admin/ui into dist/admin-ui) that polls `/status/overview`. Served with a strict
 * Content-Security-Policy: nothing inline, nothing from another origin, so an endpoint ID an
 * agent chose cannot run script in an operator's browser even if the page had a bug writing it.
 * The files are read once, on the first request, and kept (about 10 KB).
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

export const STATUS_PAGE = { script: '/ui/status.js', style: '/ui/status.css' } as const;

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  [STATUS_PAGE.script]: { file: 'status.js', type: 'text/javascript; charset=utf-8' },
  [STATUS_PAGE.style]: { file: 'status.css', type: 'text/css; charset=utf-8' },
};

const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** dist/admin-ui beside dist/dataplane when running the build; the build's from the sources (tests). */
const CANDIDATE_DIRS = [path.resolve(__dirname, '..', '..', 'admin-ui'), path.resolve(__dirname, '..', '..', 'dist', 'admin-ui')];

const cache = new Map<string, Buffer | null>();

function read(file: string): Buffer | null {
  if (!cache.has(file)) {
    let body: Buffer | null = null;
    for (const dir of CANDIDATE_DIRS) {
      try {
        body = readFileSync(path.join(dir, file));
        break;
      } catch {
        // Not in this layout.
      }
    }
    cache.set(file, body);
  }
  return cache.get(file) ?? null;
}

export function serveStatusPage(res: http.ServerResponse, urlPath: string, headOnly: boolean): void {
  const entry = FILES[urlPath];
  const body = entry === undefined ? null : read(entry.file);
  if (entry === undefined || body === null) {
    const text = JSON.stringify({ error: 'the status page is not built (npm run build)' });
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  res.writeHead(200, { ...HEADERS, 'content-type': entry.type, 'content-length': body.length });
  res.end(headOnly ? undefined : body);
}
