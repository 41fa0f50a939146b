import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import type { Browser } from 'playwright-core';
import request from 'supertest';
import { ReplayService } from '../src/modules/detection/replay/replay.service';
import { httpEvent } from './factories/http-events';
import { hasChromium, launchChromium } from './support/chromium';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

const MINUTE = 60_000;
const T0 = Date.UTC(2025, 10, 14, 0, 0);

function traffic(start: number, minutes: number, perMinute: number, ms: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let m = 0; m < minutes; m++) {
    for (let i = 0; i < perMinute; i++) out.push(httpEvent({ service: 'api', durationMs: ms + (i % 5), at: new Date(start + m * MINUTE + i * 1000) }));
  }
  return out;
}

interface ChartView {
  title: string;
  legend: string[];
  xTicks: string[];
  yTicks: number;
  yTitle: string;
  xTitle: string;
  points: Record<string, number>;
  inked: number;
}

// The replay report as a user opens it: in a real browser, offline, charts drawn by the inlined
// Chart.js with axes, time ticks, units and a legend; event anomalies and series detections apart.
(hasChromium ? describe : describe.skip)('Replay report in headless Chromium', () => {
  const t = newTenantId('rep');
  const key = newApiKey();
  let sut: TestApp;
  let browser: Browser;
  let html: string;
  let eventAnomalies: number;
  let seriesLatency: number;

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, seriesCloseIntervalSeconds: 0 });
    const events = [...traffic(T0, 150, 8, 100), ...traffic(T0 + 150 * MINUTE, 10, 8, 1500), ...traffic(T0 + 170 * MINUTE, 5, 8, 100)];
    const started = await request(sut.http).post('/replay').set('X-API-Key', key).send({ events, report: true }).expect(202);
    await sut.app.get(ReplayService).drain();
    const job = await request(sut.http).get(`/replay/${started.body.id}`).set('X-API-Key', key).expect(200);
    const detections = job.body.detections as { kind: string; metric?: string }[];
    eventAnomalies = detections.filter((d) => d.kind === 'event').length;
    seriesLatency = detections.filter((d) => d.kind === 'series' && d.metric === 'latency').length;
    html = (await request(sut.http).get(`/replay/${started.body.id}/report`).set('X-API-Key', key).expect(200)).text;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await sut.close();
  });

  it('should draw every chart offline with time ticks, units, a legend and each kind of detection', async () => {
    expect(eventAnomalies).toBeGreaterThan(0);
    expect(seriesLatency).toBeGreaterThan(0);
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const requested: string[] = [];
    await page.route('**/*', (route) => {
      requested.push(route.request().url());
      return route.abort();
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.setContent(html, { waitUntil: 'load' });
    expect(errors).toEqual([]);
    expect(requested).toEqual([]); // self-contained: nothing fetched

    const charts = await page.evaluate(() => {
      type C = {
        options: { plugins: { title: { text: string } }; scales: { x: { title: { text: string } }; y: { title: { text: string } } } };
        legend: { legendItems: { text: string }[] };
        scales: { x: { ticks: { label: string }[] }; y: { ticks: unknown[] } };
        data: { datasets: { label: string; data: unknown[] }[] };
        canvas: { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
      };
      return ((globalThis as unknown as { reportCharts: C[] }).reportCharts ?? []).map((c): ChartView => {
        const img = c.canvas.getContext('2d').getImageData(0, 0, c.canvas.width, c.canvas.height).data;
        let inked = 0;
        for (let i = 3; i < img.length; i += 4) if (img[i] > 0) inked++;
        return {
          title: c.options.plugins.title.text,
          legend: c.legend.legendItems.map((l) => l.text),
          xTicks: c.scales.x.ticks.map((tk) => tk.label),
          yTicks: c.scales.y.ticks.length,
          yTitle: c.options.scales.y.title.text,
          xTitle: c.options.scales.x.title.text,
          points: Object.fromEntries(c.data.datasets.map((d) => [d.label, d.data.length])),
          inked,
        };
      });
    });
    expect(charts.map((c) => c.yTitle)).toEqual(['requests / min', 'ms', '% of requests']);
    for (const c of charts) {
      expect(c.xTitle).toBe('event time (UTC)');
      expect(c.xTicks.length).toBeGreaterThanOrEqual(4); // ticks between the two ends
      for (const tick of c.xTicks) expect(tick).toMatch(/^\d\d:\d\d$/);
      expect(c.yTicks).toBeGreaterThanOrEqual(3);
      expect(c.legend).toEqual(expect.arrayContaining(['series detection (this metric)', 'event anomaly (one request)', 'incident (shaded)']));
      expect(c.inked).toBeGreaterThan(5_000); // drawn, not blank
    }
    const latency = charts.find((c) => c.yTitle === 'ms')!;
    // One mark per detection: every event anomaly, every latency series detection.
    expect(latency.points['event anomaly (one request)']).toBe(eventAnomalies);
    expect(latency.points['series detection (this metric)']).toBe(seriesLatency);

    const shot = await page.screenshot({ fullPage: true });
    const dir = process.env.REPORT_SCREENSHOT_DIR ?? mkdtempSync(join(tmpdir(), 'replay-report-'));
    writeFileSync(join(dir, 'report.png'), shot);
    expect(shot.length).toBeGreaterThan(50_000);
  });
});
