/**
 * The example client (examples/web) in Debian's Chromium against the real platform: built with Vite, served from
 * another origin (http://127.0.0.1:5173, which the gateway's development CORS allow-list admits), loaded with
 * district A's token. It shows A's district, schools and students, none of district B's, and pages through the
 * students with the connection cursor. The screenshot goes to test/output/browser/example-client.png.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../config/registry.ts';
import { launchBrowser, screenshot } from '../support/browser.ts';
import { demo, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { serveStatic, type StaticServer } from '../support/static-server.ts';

/** The Vite dev server's port: the origin the gateway's development CORS default allows (CORS_ORIGINS). */
const EXAMPLE_PORT = 5173;
const PAGE_SIZE = 10;
const A = 'north-valley';
const B = 'south-ridge';

const STUDENTS = `query ($after: String) { students(first: ${PAGE_SIZE}, after: $after) {
  edges { node { firstName lastName grade dateOfBirth school { name } } } pageInfo { endCursor } } }`;

let platform: TestPlatform;
let dist: string;
let site: StaticServer;
let browser: Browser;

beforeAll(async () => {
  dist = await mkdtemp(join(tmpdir(), 'k12-example-web-'));
  const [started] = await Promise.all([
    startTestPlatform(),
    build({
      configFile: projectPath('examples/web/vite.config.ts'),
      logLevel: 'warn',
      build: { outDir: dist, emptyOutDir: true },
    }),
  ]);
  platform = started;
  site = await serveStatic(dist, EXAMPLE_PORT);
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await site?.close();
  await platform?.stop();
  if (dist) await rm(dist, { recursive: true, force: true });
});

/** The table's rows as the page shows them: last name, first name, grade, date of birth, school. */
const tableRows = (page: Page) =>
  page.$$eval('#students tr', (rows) => rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent ?? '')));

/** A page of A's students as the API answers it, in the table's columns. */
async function apiRows(token: string, after: string | null) {
  const result = await platform.graphql({ query: STUDENTS, variables: { after } }, { token });
  expect(result.body.errors).toBeUndefined();
  const { edges, pageInfo } = result.body.data.students;
  const rows = edges.map(({ node }: any) => [
    node.lastName,
    node.firstName,
    String(node.grade),
    node.dateOfBirth ?? '',
    node.school?.name ?? '',
  ]);
  return { rows, endCursor: pageInfo.endCursor as string };
}

describe('example client (examples/web) in Chromium', () => {
  it("shows district A's district, schools and students from another origin, none of B's, and pages with the cursor", async () => {
    const tokenA = await platform.token(A);
    const [schoolsA, schoolsB, firstPage] = await Promise.all([
      platform.as(A, '{ schools { name } }'),
      platform.as(B, '{ schools { name } }'),
      apiRows(tokenA, null),
    ]);
    const schoolNamesA: string[] = schoolsA.body.data.schools.map((s: { name: string }) => s.name);
    const schoolNamesB: string[] = schoolsB.body.data.schools.map((s: { name: string }) => s.name);
    expect(schoolNamesA.length).toBeGreaterThan(0);
    expect(schoolNamesB.length).toBeGreaterThan(0);
    expect(firstPage.rows).toHaveLength(PAGE_SIZE);

    const page = await browser.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    const url = `${site.origin}/?${new URLSearchParams({ gateway: platform.gateway.url, token: tokenA }).toString()}`;
    await page.goto(url);

    // The page calls the gateway on another origin: this is where the gateway's CORS allow-list (CORS_ORIGINS,
    // development default http://127.0.0.1:5173) is needed. Without it the fetch fails and the page shows the error.
    const loaded = page.locator('#page-number', { hasText: '(page 1)' });
    const failed = page.locator('#error:not([hidden])');
    await loaded.or(failed).waitFor({ timeout: 15_000 });
    if (await failed.isVisible()) {
      expect.fail(
        `the page could not call the gateway from ${site.origin} (CORS?): ${await failed.textContent()}; console: ${consoleErrors.join(' | ')}`,
      );
    }

    // The token left the address bar once read.
    expect(new URL(page.url()).searchParams.has('token')).toBe(false);
    expect(await page.textContent('#district-name')).toBe(demo(A).name);
    expect(await page.$$eval('#schools li', (items) => items.map((item) => item.textContent))).toEqual(schoolNamesA);
    expect(await tableRows(page)).toEqual(firstPage.rows);

    const text = (await page.textContent('body')) ?? '';
    expect(text).not.toContain(demo(B).name);
    for (const name of schoolNamesB) expect(text).not.toContain(name);

    // Next page: the connection's endCursor as `after`.
    const secondPage = await apiRows(tokenA, firstPage.endCursor);
    expect(secondPage.rows).toHaveLength(PAGE_SIZE);
    expect(secondPage.rows).not.toEqual(firstPage.rows);
    await page.click('#next-page');
    await page.locator('#page-number', { hasText: '(page 2)' }).waitFor({ timeout: 15_000 });
    expect(await tableRows(page)).toEqual(secondPage.rows);
    expect(await page.textContent('#district-name')).toBe(demo(A).name);

    const path = await screenshot(page, 'example-client');
    expect(path).toMatch(/test\/output\/browser\/example-client\.png$/);
    expect(consoleErrors).toEqual([]);
    await page.close();
  });
});
