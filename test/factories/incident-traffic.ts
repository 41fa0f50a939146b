import { randomUUID } from 'crypto';
import request from 'supertest';
import { AlertsService } from '../../src/modules/alerts/alerts.service';
import { AnomalyBus } from '../../src/modules/detection/anomaly-bus';
import { SeriesService } from '../../src/modules/detection/series.service';
import { DetectionRow, insertDetections } from '../../src/modules/store/event.repository';
import { TestApp } from '../support/test-app';

export const MINUTE = 60_000;

/** A minute boundary `hoursAgo` hours before now: event times recent enough for any retention or age limit. */
export const minuteHoursAgo = (hoursAgo: number) => Math.floor((Date.now() - hoursAgo * 3_600_000) / MINUTE) * MINUTE;

export interface MinuteShape {
  /** Requests this minute (default: the scenario's rate). */
  count?: number;
  /** Latency multiplier. */
  latency?: number;
  /** Share of requests answered 503. */
  errorShare?: number;
  /** Response-size multiplier. */
  bytes?: number;
}

/**
 * Deterministic request logs of one service, minute by minute from `start` (epoch ms): `perMinute`
 * requests spread over each minute, latency around `ms` (±40 %, fixed pattern), 5 kB responses, and
 * per minute whatever `shape(minuteIndex)` changes.
 */
export function requests(
  service: string,
  start: number,
  minutes: number,
  perMinute: number,
  shape: (m: number) => MinuteShape | null = () => null,
  ms = 100,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let m = 0; m < minutes; m++) {
    const s = shape(m) ?? {};
    const n = s.count ?? perMinute;
    const errors = Math.round(n * (s.errorShare ?? 0));
    for (let i = 0; i < n; i++) {
      const jitter = ((i * 7919 + m * 104729) % 1000) / 1000;
      out.push({
        timestamp: new Date(start + m * MINUTE + Math.floor((i / n) * MINUTE)).toISOString(),
        service,
        http: { request: { method: 'GET', path: '/p' }, response: { status_code: i < errors ? 503 : 200, bytes: Math.round(5000 * (0.9 + 0.2 * jitter) * (s.bytes ?? 1)) } },
        performance: { duration_ms: Math.round(ms * (0.6 + 0.8 * jitter) * (s.latency ?? 1) * 10) / 10 },
      });
    }
  }
  return out;
}

/** Merges several services' logs into event-time order, as a shipper sends them. */
export const inTimeOrder = (...lists: Record<string, unknown>[][]) =>
  lists.flat().sort((a, b) => String(a.timestamp).localeCompare(String(b.timestamp)));

/** POST /ingest in order, in batches (one request in flight, as the watermark expects). */
export async function sendAll(app: TestApp, events: Record<string, unknown>[], key?: string, tenant?: string, batch = 2000): Promise<void> {
  for (let i = 0; i < events.length; i += batch) {
    const req = request(app.http).post(`/ingest${tenant ? `?tenant=${tenant}` : ''}`);
    if (key) req.set('X-API-Key', key);
    await req.send(events.slice(i, i + batch)).expect(200);
  }
}

/** Closes the tenant's due minutes and runs the alert job once (what the timers do). */
export async function closeAndAlert(app: TestApp, tenant: string): Promise<DetectionRow[]> {
  const found = await app.app.get(SeriesService).closeTenant(tenant);
  await app.app.get(AlertsService).tick();
  return found;
}

/**
 * Stores one piece of series evidence for a service as the series job would (a traffic drop to zero
 * this minute) and tells the alert job: an incident opens without a warm-up. For delivery tests.
 */
export async function storeEvidence(app: TestApp, tenant: string, service: string, opts: { severity?: 'warning' | 'critical'; at?: Date; publish?: boolean } = {}): Promise<DetectionRow> {
  const ts = opts.at ?? new Date(Math.floor(Date.now() / MINUTE) * MINUTE);
  const d: DetectionRow = {
    id: randomUUID(),
    kind: 'series',
    eventId: null,
    service,
    ts,
    score: -1e-6,
    prediction: -1,
    driftAlert: false,
    modelVersion: null,
    baseline: false,
    explanation: { summary: 'no requests for 3 min (expected 20/min)', features: [] },
    metadata: { signal: 'traffic', severity: opts.severity ?? 'critical', direction: 'down', since: new Date(ts.getTime() - 2 * MINUTE).toISOString(), window_minutes: 3, ratio: 0, log_p: -60 },
    durationMs: null,
    statusCode: null,
    metric: 'request_count',
    value: 0,
    expected: 20,
    likelihood: 1,
  };
  await insertDetections(app.database.dataSource, tenant, [d]);
  if (opts.publish !== false) app.app.get(AnomalyBus).publish(tenant, [d]);
  return d;
}
