import { randomBytes, randomUUID } from 'crypto';
import { Client } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { ALL_MIGRATIONS } from '../migrations';
import { PartitionByDay1764300600000 } from '../migrations/1764300600000-PartitionByDay';
import { AppConfig } from '../src/config/app-config';
import { DetectionService } from '../src/modules/detection/detection.service';
import { Database } from '../src/modules/store/database/database';
import { PartitionRepository } from '../src/modules/store/partition.repository';
import { httpEvent } from './factories/http-events';
import { newApiKey, newTenantId, startTestApp, TestApp } from './support/test-app';

const DAY = 86_400_000;
const utcDay = (t: number) => new Date(t - (t % DAY));
const ymd = (d: Date) => d.toISOString().slice(0, 10).replace(/-/g, '');

async function withAdmin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `ad_part_${randomBytes(4).toString('hex')}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined) };
}

const partitionsOf = async (ds: DataSource, table: string): Promise<string[]> =>
  (
    await ds.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass ORDER BY 1`, [table])
  ).map((r: { relname: string }) => r.relname);

describe(PartitionByDay1764300600000.name, () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db.drop());

  it('should convert a database with rows: same rows, day partitions, keys holding the partition key, and back', async () => {
    // Every migration before the conversion; it and the ones after it are applied by the service.
    const before = ALL_MIGRATIONS.slice(0, ALL_MIGRATIONS.indexOf(PartitionByDay1764300600000));
    const ds = new DataSource({ type: 'postgres', url: db.url, migrations: before, migrationsTableName: 'schema_migrations' });
    await ds.initialize();
    try {
      await ds.runMigrations({ transaction: 'each' });
      const now = Date.now();
      const times = [now, now - DAY, now - 3 * DAY, now - 1000 * DAY]; // the last one is older than any day partition made
      for (const [i, t] of times.entries()) {
        await ds.query(
          `INSERT INTO events (tenant_id, id, service, ts, source, duration_ms, status_code, metadata, score, prediction)
           VALUES ('a', $1, 'api', $2, 'api', 12.5, 200, '{"k": 1}', 0.1, 1), ('b', $1, 'api', $2, 'api', 7, 500, '{}', -0.2, -1)`,
          [`e${i}`, new Date(t)],
        );
        await ds.query(
          `INSERT INTO detections (tenant_id, id, kind, event_id, service, ts, score, prediction) VALUES ('b', $1, 'event', $2, 'api', $3, -0.2, -1)`,
          [randomUUID(), `e${i}`, new Date(t)],
        );
        await ds.query(`INSERT INTO series_minutes (tenant_id, service, minute, count, errors) VALUES ('a', 'api', date_trunc('minute', $1::timestamptz), 3, 1)`, [new Date(t)]);
        await ds.query(`INSERT INTO series_partials (tenant_id, service, minute, count, errors, latencies) VALUES ('a', 'api', date_trunc('minute', $1::timestamptz), 2, 0, '{1,2}')`, [new Date(t)]);
      }
      const snapshot = async () => ({
        events: await ds.query(`SELECT tenant_id, id, service, ts, duration_ms, status_code, metadata, score, prediction, received_at FROM events ORDER BY 1, 2`),
        detections: await ds.query(`SELECT * FROM detections ORDER BY id`),
        minutes: await ds.query(`SELECT * FROM series_minutes ORDER BY minute`),
        partials: await ds.query(`SELECT * FROM series_partials ORDER BY minute`),
      });
      const rows = await snapshot();

      const sut = await Database.open(AppConfig.from({ databaseUrl: db.url }), { migrate: false });
      try {
        expect(await sut.migrate()).toEqual(['PartitionByDay1764300600000', 'EventsKeyByTime1764400000000', 'SeriesServiceMarks1764500000000']);
      } finally {
        await sut.close();
      }
      expect(await snapshot()).toEqual(rows);

      for (const table of ['events', 'detections', 'series_minutes', 'series_partials']) {
        const [{ kind }] = await ds.query(`SELECT relkind::text AS kind FROM pg_class WHERE oid = $1::regclass`, [table]);
        expect(kind).toBe('p');
        const parts = await partitionsOf(ds, table);
        // a partition per stored day and from yesterday to three days ahead, plus the default one
        for (const t of [now - 3 * DAY, now - DAY, now, now + 3 * DAY]) expect(parts).toContain(`${table}_p${ymd(utcDay(t))}`);
        expect(parts).toContain(`${table}_default`);
      }
      const [{ n: inDefault }] = await ds.query(`SELECT COUNT(*)::int AS n FROM events_default`);
      expect(inDefault).toBe(2); // the 1000-day-old rows
      const keys: { name: string; def: string }[] = await ds.query(
        `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE i.indrelid IN ('events'::regclass, 'detections'::regclass, 'series_minutes'::regclass) AND i.indisunique ORDER BY 1`,
      );
      expect(keys.map((k) => [k.name, k.def.slice(k.def.indexOf('('))])).toEqual([
        ['detections_pkey', '(tenant_id, id, ts)'],
        ['detections_tenant_event_idx', '(tenant_id, event_id, ts) WHERE (event_id IS NOT NULL)'],
        ['events_pkey', '(tenant_id, ts, id)'],
        ['series_minutes_pkey', '(tenant_id, service, minute)'],
      ]);
      // Every partition's key in the same order (new events land at the "now" end of the index).
      const partitionKeys: { def: string }[] = await ds.query(
        `SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid AND i.indisunique
          WHERE h.inhparent = 'events'::regclass`,
      );
      expect(partitionKeys.length).toBe((await partitionsOf(ds, 'events')).length);
      for (const k of partitionKeys) expect(k.def).toContain('(tenant_id, ts, id)');
      const indexes: { name: string }[] = await ds.query(`SELECT indexname AS name FROM pg_indexes WHERE tablename = 'events' ORDER BY 1`);
      expect(indexes.map((i) => i.name)).toEqual(['events_outbox_idx', 'events_pkey', 'events_tenant_received_idx', 'events_tenant_service_received_idx']);

      // and back: no service marks, the key in its old order, then plain tables, rows intact
      const reverting = await Database.open(AppConfig.from({ databaseUrl: db.url }), { migrate: false });
      try {
        await reverting.revertLastMigration();
        const [{ marks }] = await ds.query(`SELECT to_regclass('series_service_marks') AS marks`);
        expect(marks).toBeNull();
        await reverting.revertLastMigration();
        const [old] = await ds.query(`SELECT pg_get_indexdef('events_pkey'::regclass) AS def`);
        expect(old.def).toContain('(tenant_id, id, ts)');
        expect(await snapshot()).toEqual(rows);
        await reverting.revertLastMigration();
      } finally {
        await reverting.close();
      }
      const [{ kind }] = await ds.query(`SELECT relkind::text AS kind FROM pg_class WHERE oid = 'events'::regclass`);
      expect(kind).toBe('r');
      expect(await snapshot()).toEqual(rows);
      const [pk] = await ds.query(`SELECT pg_get_indexdef('events_pkey'::regclass) AS def`);
      expect(pk.def).toContain('(tenant_id, id)');
    } finally {
      await ds.destroy();
    }
  });
});

describe(PartitionRepository.name, () => {
  const t = newTenantId();
  const key = newApiKey();
  let sut: TestApp;
  let repo: PartitionRepository;
  beforeAll(async () => {
    // The background series closing stays off: its writes lock series_partials, and a drop that waits
    // over its 100 ms lock timeout is (rightly) left for the next run, which this test does not wait for.
    sut = await startTestApp({ defaultTenant: t, tenants: [t], tenantApiKeys: { [t]: [key] }, eventRetentionHours: 48, seriesCloseIntervalSeconds: 0 });
    repo = sut.app.get(PartitionRepository);
  });
  afterAll(() => sut.close());

  const count = async (table: string, where = '') => Number((await sut.database.dataSource.query(`SELECT COUNT(*) AS n FROM ${table} ${where}`))[0].n);

  it('should move the default partition rows of a day into that day when its partition is created', async () => {
    // A day far ahead that no job has created yet: its rows wait in the default partition.
    const day = utcDay(Date.now() + 40 * DAY);
    const name = `events_p${ymd(day)}`;
    await sut.database.dataSource.query(`DROP TABLE IF EXISTS ${name}`);
    const id = `far-${randomBytes(4).toString('hex')}`;
    await sut.database.dataSource.query(
      `INSERT INTO events (tenant_id, id, service, ts, source, metadata, score, prediction) VALUES ($1, $2, 'api', $3, 'api', '{}', 0, 1)`,
      [t, id, new Date(day.getTime() + 3_600_000)],
    );
    expect(await count('events_default', `WHERE id = '${id}'`)).toBe(1);
    expect(await repo.ensureDayPartitions('events', day, day)).toBe(1);
    expect(await repo.ensureDayPartitions('events', day, day)).toBe(0);
    expect(await count('events_default', `WHERE id = '${id}'`)).toBe(0);
    expect(await count(name, `WHERE id = '${id}'`)).toBe(1);
    await sut.database.dataSource.query(`DROP TABLE ${name}`);
  });

  it('should create partitions ahead concurrently from several replicas without failing', async () => {
    const from = utcDay(Date.now() + 50 * DAY);
    const to = new Date(from.getTime() + 2 * DAY);
    const created = await Promise.all([1, 2, 3].map(() => repo.ensureDayPartitions('series_minutes', from, to)));
    expect(created.reduce((a, b) => a + b, 0)).toBe(3);
    for (const p of await repo.list('series_minutes')) if (p.from >= from) await sut.database.dataSource.query(`DROP TABLE ${p.name}`);
  });

  it('should keep retention by dropping whole day partitions, create days ahead, and keep ingest idempotent', async () => {
    const now = Date.now();
    const old = utcDay(now - 5 * DAY);
    await repo.ensureDayPartitions('events', old, old);
    await repo.ensureDayPartitions('series_partials', old, old);
    const ev = (ts: Date, id: string) => ({ ...httpEvent(), id, timestamp: ts.toISOString() });
    const oldId = `old-${randomBytes(4).toString('hex')}`;
    const newId = `new-${randomBytes(4).toString('hex')}`;
    await request(sut.http).post('/ingest').set('X-API-Key', key).send([ev(new Date(old.getTime() + 60_000), oldId), ev(new Date(now - 60_000), newId)]).expect(200);
    expect(await count(`events_p${ymd(old)}`, `WHERE tenant_id = '${t}'`)).toBe(1);

    await sut.app.get(DetectionService).maintain(now);
    const parts = (await repo.list('events')).map((p) => p.name);
    expect(parts).not.toContain(`events_p${ymd(old)}`);
    expect((await repo.list('series_partials')).map((p) => p.name)).not.toContain(`series_partials_p${ymd(old)}`);
    // the day the cutoff falls in is kept whole; today and three days ahead exist
    for (const d of [-2, -1, 0, 1, 2, 3]) expect(parts).toContain(`events_p${ymd(utcDay(now + d * DAY))}`);
    expect(await count('events', `WHERE tenant_id = '${t}' AND id = '${oldId}'`)).toBe(0);
    expect(await count('events', `WHERE tenant_id = '${t}' AND id = '${newId}'`)).toBe(1);

    // The same item again: stored once, answered with the original result.
    const retry = await request(sut.http).post('/ingest').set('X-API-Key', key).send([ev(new Date(now - 60_000), newId)]).expect(200);
    expect(retry.body.results[0]).toMatchObject({ status: 'accepted', id: newId });
    expect(await count('events', `WHERE tenant_id = '${t}' AND id = '${newId}'`)).toBe(1);
  });

  it('should drop a detections partition only once the history limit emptied it', async () => {
    const day = utcDay(Date.now() - 10 * DAY);
    await repo.ensureDayPartitions('detections', day, day);
    const name = `detections_p${ymd(day)}`;
    await sut.database.dataSource.query(
      `INSERT INTO detections (tenant_id, id, kind, service, ts, score, prediction) VALUES ($1, $2, 'series', 'api', $3, -1, -1)`,
      [t, randomUUID(), new Date(day.getTime() + 1000)],
    );
    expect(await repo.dropDayPartitionsBefore('detections', new Date(Date.now() - DAY), { onlyEmpty: true })).not.toContain(name);
    await sut.database.dataSource.query(`DELETE FROM ${name}`);
    expect(await repo.dropDayPartitionsBefore('detections', new Date(Date.now() - DAY), { onlyEmpty: true })).toContain(name);
  });

  it('should leave a partition whose lock is not granted in time for the next run', async () => {
    const day = utcDay(Date.now() - 20 * DAY);
    await repo.ensureDayPartitions('series_minutes', day, day);
    const reader = sut.database.dataSource.createQueryRunner();
    await reader.connect();
    try {
      await reader.startTransaction();
      await reader.query(`SELECT COUNT(*) FROM series_minutes`); // holds ACCESS SHARE on the parent
      expect(await repo.dropDayPartitionsBefore('series_minutes', utcDay(Date.now() - 19 * DAY), { lockTimeoutMs: 50 })).toEqual([]);
      await reader.commitTransaction();
    } finally {
      await reader.release();
    }
    expect(await repo.dropDayPartitionsBefore('series_minutes', utcDay(Date.now() - 19 * DAY))).toEqual([`series_minutes_p${ymd(day)}`]);
  });

  it('should drop a day table left detached (a crash between detaching and dropping)', async () => {
    const day = utcDay(Date.now() - 30 * DAY);
    const name = `series_partials_p${ymd(day)}`;
    await sut.database.dataSource.query(`CREATE TABLE ${name} (LIKE series_partials)`);
    expect(await repo.dropDayPartitionsBefore('series_partials', utcDay(Date.now() - 29 * DAY))).toEqual([name]);
    const [{ gone }] = await sut.database.dataSource.query(`SELECT to_regclass($1) IS NULL AS gone`, [name]);
    expect(gone).toBe(true);
  });

  it('should have tenant_id lead every primary key and unique index (distributable by tenant, as Citus needs)', async () => {
    const rows: { tbl: string; name: string; def: string }[] = await sut.database.dataSource.query(
      `SELECT t.relname AS tbl, c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND i.indisunique AND t.relname <> 'schema_migrations' AND NOT t.relispartition`,
    );
    expect(rows.length).toBeGreaterThan(5);
    const offenders = rows.filter((r) => !/USING btree \(tenant_id[,)]/.test(r.def)).map((r) => `${r.tbl}.${r.name}`);
    expect(offenders).toEqual([]);
    const fks: { name: string; def: string }[] = await sut.database.dataSource.query(
      `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace`,
    );
    expect(fks.filter((f) => !/^FOREIGN KEY \(tenant_id,/.test(f.def)).map((f) => f.name)).toEqual([]);
  });
});
