/**
 * Headless Chromium for the page tests: Debian's `chromium` package (installed by `make browser`),
 * driven by Playwright's library (`playwright-core`, which downloads no browser).
 */
import * as fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The browser binary itself: /usr/bin/chromium is a shell wrapper that Playwright cannot drive. */
const CANDIDATES = [process.env['PIKO_TEST_CHROMIUM'], '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser'];

export function chromiumPath(): string {
  const found = CANDIDATES.find((p): p is string => p !== undefined && p !== '' && fs.existsSync(p));
  if (found === undefined) throw new Error("no Chromium: `make browser` installs Debian's chromium package (or set PIKO_TEST_CHROMIUM)");
  return found;
}

export function launchBrowser(): Promise<Browser> {
  // The tests run as root, where Chromium refuses its sandbox.
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'], timeout: 60_000 });
}
