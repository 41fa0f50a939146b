import { Client } from 'pg';
import request from 'supertest';
import { httpEvent, newEventId } from './factories/http-events';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Database timeouts', () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;
  let locker: Client;

  beforeAll(async () => {
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, dbStatementTimeoutMs: 400 });
    locker = new Client({ connectionString: process.env.DATABASE_URL });
    await locker.connect();
  });
  afterAll(async () => {
    await locker.end();
    await sut.close();
  });

  /** Holds an exclusive lock on `table` while `work` runs, as a long migration or a stuck session would. */
  async function whileLocked<T>(table: string, work: () => Promise<T>): Promise<T> {
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    try {
      return await work();
    } finally {
      await locker.query('ROLLBACK');
    }
  }

  it('should answer 503 DATABASE_TIMEOUT with Retry-After when a write waits on a lock, and commit nothing afterwards', async () => {
    const id = newEventId();
    const res = await whileLocked('events', () => request(sut.http).post('/ingest').set('X-API-Key', key).send(httpEvent({ id })));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body).toMatchObject({ statusCode: 503, code: 'DATABASE_TIMEOUT', requestId: expect.any(String) });
    // The server cancelled the statement: once the lock is gone, no session is still running it and nothing of it shows up.
    await waitFor(async () => (await locker.query(`SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%INSERT INTO events%' AND pid <> pg_backend_pid()`)).rows[0].n === 0);
    const rows = await sut.database.dataSource.query(`SELECT id FROM events WHERE tenant_id = $1 AND id = $2`, [t, id]);
    expect(rows).toEqual([]);
    // And the same request, retried, is stored once.
    await request(sut.http).post('/ingest').set('X-API-Key', key).send(httpEvent({ id })).expect(200);
  });

  it('should answer 503 DATABASE_TIMEOUT for a silence written while its table is locked', async () => {
    const res = await whileLocked('silences', () =>
      request(sut.http).post('/silences').set('X-API-Key', key).send({ service: 'api', duration_minutes: 5, reason: 'timeout test' }),
    );
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('DATABASE_TIMEOUT');
    const rows = await sut.database.dataSource.query(`SELECT id FROM silences WHERE tenant_id = $1`, [t]);
    expect(rows).toEqual([]);
  });
});
