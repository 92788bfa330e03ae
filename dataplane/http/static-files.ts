/**
 * The pages the processes serve (the server's status page, the agent's inspector): static HTML,
 * CSS and one script each, built into dist/<dir> (`npm run build:ui`), under a strict
 * Content-Security-Policy: nothing inline, nothing from another origin, so an ID an agent chose
 * cannot run script in a user's browser even if a page had a bug writing it. Files are read on
 * first use and kept (a few KB each).
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export class StaticFiles {
  private readonly dirs: string[];
  private readonly cache = new Map<string, Buffer | null>();

  /** `routes`: URL path → file name in dist/<dir>. */
  constructor(
    dir: string,
    private readonly routes: Readonly<Record<string, string>>,
  ) {
    // dist/<dir> beside dist/dataplane in a build; the build's, from the sources (tests).
    this.dirs = [path.resolve(__dirname, '..', '..', dir), path.resolve(__dirname, '..', '..', 'dist', dir)];
  }

  has(urlPath: string): boolean {
    return Object.hasOwn(this.routes, urlPath);
  }

  serve(res: http.ServerResponse, urlPath: string, headOnly: boolean): void {
    const file = this.routes[urlPath];
    const body = file === undefined ? null : this.read(file);
    if (file === undefined || body === null) {
      const text = JSON.stringify({ error: 'the page is not built (npm run build)' });
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    res.writeHead(200, {
      ...PAGE_HEADERS,
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
    });
    res.end(headOnly ? undefined : body);
  }

  private read(file: string): Buffer | null {
    if (!this.cache.has(file)) {
      let body: Buffer | null = null;
      for (const dir of this.dirs) {
        try {
          body = readFileSync(path.join(dir, file));
          break;
        } catch {
          // Not in this layout.
        }
      }
      this.cache.set(file, body);
    }
    return this.cache.get(file) ?? null;
  }
}
