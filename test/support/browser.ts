/**
 * Debian's Chromium (`apt-get install -y chromium`, installed by .ci/run), driven by playwright-core, for the tests
 * that prove the graph works from a real browser. Screenshots go to test/output/browser/ (git-ignored).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../config/registry.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOT_DIR = join(PROJECT_ROOT, 'test', 'output', 'browser');

/**
 * Headless, no sandbox (CI runs as root) and nothing that reaches for the internet: these machines have none, and
 * Chromium's background connections would otherwise be refused many at a time.
 */
export const launchBrowser = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

/** Saves a full-page screenshot as `<name>.png` and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
