/**
 * The gateway's frontend edge in Debian's Chromium: (b) a page on an origin in CORS_ORIGINS reads its district
 * through the gateway, the same page on an origin outside it cannot; (c) the explorer loads from the gateway alone
 * (no request leaves it), its introspection passes with a token, and a query typed into it with a token returns the district; (d) a screenshot of each,
 * under test/output/browser/.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../config/config.ts';
import { launchBrowser, screenshot } from '../support/browser.ts';
import { demo, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * A page that POSTs one query to the gateway with a token (both from its URL) and shows the outcome in #result:
 * the district's name, or the error the browser gave its script.
 */
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>district page</title></head>
<body><h1>District</h1><p id="origin"></p><p id="result">loading</p>
<script>
  const params = new URLSearchParams(location.search);
  document.getElementById('origin').textContent = 'page origin: ' + location.origin;
  const show = (text, state) => {
    const result = document.getElementById('result');
    result.textContent = text;
    result.dataset.state = state;
  };
  fetch(params.get('gateway'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + params.get('token') },
    body: JSON.stringify({ query: '{ district { name } }' }),
  })
    .then((response) => response.json())
    .then((body) => show('district: ' + body.data.district.name, 'loaded'))
    .catch((error) => show('fetch failed: ' + error.message, 'failed'));
</script></body></html>`;

async function servePage(): Promise<{ server: Server; origin: string }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const north = demo('north-valley');
let allowed: { server: Server; origin: string };
let other: { server: Server; origin: string };
let platform: TestPlatform;
let browser: Browser;

beforeAll(async () => {
  allowed = await servePage();
  other = await servePage();
  const base = readConfig({});
  platform = await startTestPlatform({ frontend: { ...base.frontend, corsOrigins: [allowed.origin] } });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await platform?.stop();
  for (const page of [allowed, other]) await new Promise((resolve) => page?.server.close(resolve));
});

async function openPage(origin: string, token: string): Promise<Page> {
  const page = await browser.newPage();
  const search = new URLSearchParams({ gateway: platform.gateway.url, token });
  await page.goto(`${origin}/?${search}`);
  await page.waitForSelector('#result[data-state]');
  return page;
}

describe('CORS in a browser', () => {
  it('a page on an allowed origin reads its district through the gateway', async () => {
    const page = await openPage(allowed.origin, await platform.token('north-valley'));
    expect(await page.textContent('#result')).toBe(`district: ${north.name}`);
    console.log(`screenshot: ${await screenshot(page, 'cors-allowed-origin')}`);
    await page.close();
  });

  it('the same page on an origin outside the allow-list fails its fetch (the browser blocks the answer)', async () => {
    const page = await openPage(other.origin, await platform.token('north-valley'));
    expect(await page.getAttribute('#result', 'data-state')).toBe('failed');
    expect(await page.textContent('#result')).toMatch(/^fetch failed: Failed to fetch/);
    console.log(`screenshot: ${await screenshot(page, 'cors-other-origin')}`);
    await page.close();
  });
});

describe('the explorer in a browser', () => {
  it('loads from the gateway alone; with a token its introspection passes and a typed query returns the district', async () => {
    const page = await browser.newPage();
    // A 9 MB page and its editors on two shared, busy cores: every wait below is for a condition, none for a time.
    page.setDefaultTimeout(90_000);
    const gatewayOrigin = new URL(platform.gateway.url).origin;
    const elsewhere: string[] = [];
    page.on('request', (request) => {
      const url = request.url();
      if (!url.startsWith(`${gatewayOrigin}/`) && !url.startsWith('data:') && !url.startsWith('blob:')) elsewhere.push(url);
    });
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.goto(platform.gateway.url);
    await page.waitForSelector('.graphiql-container');
    await page.waitForSelector('.graphiql-query-editor .monaco-editor');

    // The headers pane is open and holds the template; the token replaces it.
    const headers = page.locator('.graphiql-editor-tool .monaco-editor').last();
    await headers.waitFor();
    // Monaco lays spaces out as no-break spaces.
    await page.waitForFunction(() => /Bearer\s<paste\sa\stoken>/.test(document.querySelector('.graphiql-editor-tool')?.textContent ?? ''));
    await headers.click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${await platform.token('north-valley')}` }));

    // GraphiQL's own introspection query (refetched with the token) passes the operation limits.
    const introspection = page.waitForResponse((response) => !!response.request().postData()?.includes('__schema'));
    await page.getByLabel('Re-fetch GraphQL schema').click();
    expect((await introspection).status()).toBe(200);
    expect(((await (await introspection).json()) as { data?: { __schema?: unknown } }).data?.__schema).toBeTruthy();

    const query = page.locator('.graphiql-query-editor .monaco-editor');
    await query.click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('Delete');
    // Named as the page's default query: GraphiQL settles the operation name shortly after an edit, and a click
    // before then would ask for the old name.
    await page.keyboard.insertText('query District { district { name slug } }');
    await page.waitForFunction(() =>
      (document.querySelector('.graphiql-query-editor')?.textContent ?? '')
        .replace(/\s+/g, ' ')
        .includes('District { district { name slug } }'),
    );
    const execution = page.waitForResponse((response) => !!response.request().postData()?.includes('name slug'));
    await page.click('.graphiql-execute-button');
    try {
      expect((await execution).status()).toBe(200);
      await page.waitForFunction(
        (name) => (document.querySelector('.graphiql-response')?.textContent ?? '').replace(/\s+/g, ' ').includes(name),
        north.name,
      );
    } catch (error) {
      console.log(`screenshot of the failure: ${await screenshot(page, 'explorer-failure')}`);
      throw error;
    }
    const responseText = () => page.evaluate(() => (document.querySelector('.graphiql-response')?.textContent ?? '').replace(/\s+/g, ' '));
    expect(await responseText()).toContain(`"district": { "name": "${north.name}", "slug": "${north.slug}" }`);
    console.log(`screenshot: ${await screenshot(page, 'explorer')}`);
    expect(elsewhere).toEqual([]);
    expect(errors.filter((text) => /Content Security Policy|net::ERR/.test(text))).toEqual([]);
    await page.close();
  }, 240_000);
});
