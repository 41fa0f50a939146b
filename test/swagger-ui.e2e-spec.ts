import { AddressInfo } from 'net';
import type { Browser } from 'playwright-core';
import request from 'supertest';
import { hasChromium, launchChromium } from './support/chromium';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

// A user's first steps at /docs, in a real browser: Authorize with the key, then "Try it out" on
// POST /ingest with the document's own example. Skipped only where Debian's chromium is absent.
(hasChromium ? describe : describe.skip)('Swagger UI in headless Chromium', () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] } });
    await sut.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(sut.http.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await sut.close();
  });

  it('should authorize with the API key and get 200 from POST /ingest with the example body', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/docs`);
    await page.locator('button.authorize').first().click();
    const apiKeyForm = page.locator('.auth-container form').filter({ has: page.locator('#api_key_value') });
    await apiKeyForm.locator('#api_key_value').fill(key);
    await apiKeyForm.locator('button.authorize').click();
    await page.locator('.modal-ux button.close-modal').click();

    const op = page.locator('#operations-ingestion-IngestionController_ingest');
    await op.locator('.opblock-summary').click();
    await op.getByRole('button', { name: 'Try it out' }).click();
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/ingest') && r.request().method() === 'POST'),
      op.getByRole('button', { name: 'Execute' }).click(),
    ]);
    expect(response.request().headers()['x-api-key']).toBe(key);
    expect(response.status()).toBe(200);
    // What the user sees: the live response row of Swagger UI.
    const shown = op.locator('.live-responses-table tbody .response-col_status').first();
    await shown.waitFor();
    expect(await shown.innerText()).toContain('200');
    expect(await response.json()).toEqual(expect.objectContaining({ accepted: 1, rejected: 0 }));

    const summary = await request(sut.http).get('/metrics').set('X-API-Key', key).expect(200);
    expect(summary.body.events_total).toBe(1);
  });
});
