import request from 'supertest';
import { TestApp } from '../support/test-app';
import { waitFor } from './alert-traffic';
import { storeEvidence } from './incident-traffic';

export type Delivery = {
  status: string;
  attempts: number;
  last_outcome: string | null;
  last_error: string | null;
  uncertain_attempts: number;
  target: string | null;
  next_attempt_at: string | null;
};
export type AlertItem = { id: string; kind: string; service: string; delivery: Delivery };

/** The tenant's alerts through GET /alerts, newest first. */
export const alertsOf = async (app: TestApp, key: string, query = ''): Promise<AlertItem[]> =>
  (await request(app.http).get(`/alerts${query}`).set('X-API-Key', key).expect(200)).body.items;
/**
 * Waits until the tenant's newest alert is in the given delivery status after at least `minAttempts`
 * attempts: a new message is `pending` with 0 attempts before its first call, so waiting for
 * `pending` alone would race the sender.
 */
export const settled = (app: TestApp, key: string, status: string, minAttempts = 1, timeoutMs = 30_000) =>
  waitFor(
    async () => {
      const [a] = await alertsOf(app, key);
      return a?.delivery.status === status && a.delivery.attempts >= minAttempts ? a : undefined;
    },
    timeoutMs,
    `an alert ${status} after ${minAttempts} attempt(s)`,
  );
/** Evidence of an incident on a service (stored as the series job does): one message. */
export async function oneAnomaly(app: TestApp, key: string, service = 'api'): Promise<void> {
  const res = await request(app.http).get('/metrics').set('X-API-Key', key).expect(200);
  await storeEvidence(app, res.body.tenant, service);
}
