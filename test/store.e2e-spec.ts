import { randomBytes } from 'crypto';
import { Client } from 'pg';
import request from 'supertest';
import { AppConfig } from '../src/config/app-config';
import { createApp } from '../src/app.factory';
import { Database } from '../src/modules/store/database/database';
import { ALL_MIGRATIONS } from '../migrations';
import { TcpProxy } from './support/tcp-proxy';

const baseUrl = () => new URL(process.env.DATABASE_URL!);

async function withAdmin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const url = baseUrl();
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe(Database.name, () => {
  describe('migrate', () => {
    const name = `ad_empty_${randomBytes(4).toString('hex')}`;
    afterAll(() => withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));

    it('should build the whole schema on an empty database, and apply nothing the second time', async () => {
      await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
      const url = baseUrl();
      url.pathname = `/${name}`;
      const config = AppConfig.from({ databaseUrl: url.toString() });

      const sut = await Database.open(config, { migrate: false });
      try {
        expect(await sut.hasPendingMigrations()).toBe(true);
        const applied = await sut.migrate();
        expect(applied).toEqual(ALL_MIGRATIONS.map((m) => new m().name));
        expect(await sut.hasPendingMigrations()).toBe(false);
        expect(await sut.migrate()).toEqual([]);
        const tables: { table_name: string }[] = await sut.dataSource.query(
          `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
        );
        expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['rate_limit_windows', 'schema_migrations']));
      } finally {
        await sut.close();
      }
    });

    it('should apply each migration once when replicas start together', async () => {
      const other = `${name}_r`;
      await withAdmin((c) => c.query(`CREATE DATABASE ${other}`));
      const url = baseUrl();
      url.pathname = `/${other}`;
      const config = AppConfig.from({ databaseUrl: url.toString() });
      const replicas = await Promise.all([1, 2, 3].map(() => Database.open(config, { migrate: false })));
      try {
        const results = await Promise.all(replicas.map((r) => r.migrate()));
        expect(results.flat()).toHaveLength(ALL_MIGRATIONS.length);
      } finally {
        await Promise.all(replicas.map((r) => r.close()));
        await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${other} WITH (FORCE)`));
      }
    });
  });
});

describe('GET /readyz', () => {
  it('should answer 503 while the database is unreachable and recover by itself', async () => {
    const target = baseUrl();
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const port = await proxy.start();
    const viaProxy = new URL(target.toString());
    viaProxy.port = String(port);
    const config = AppConfig.from({ databaseUrl: viaProxy.toString() });
    const database = await Database.open(config, { migrate: false });
    const app = await createApp(config, database);
    try {
      const up = await request(app.getHttpServer()).get('/readyz').expect(200);
      expect(up.body.details.database.status).toBe('up');

      await proxy.cut();
      const down = await request(app.getHttpServer()).get('/readyz').expect(503);
      expect(down.body).toMatchObject({ code: 'NOT_READY' });
      expect(down.body.details).toContainEqual({ field: 'database', reason: 'database unreachable' });
      await request(app.getHttpServer()).get('/healthz').expect(200);

      await proxy.restore();
      let status = 0;
      for (const deadline = Date.now() + 30_000; status !== 200 && Date.now() < deadline; ) {
        status = (await request(app.getHttpServer()).get('/readyz')).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(200);
    } finally {
      await app.close();
      await proxy.cut();
    }
  });

  it('should answer 503 when migrations are pending', async () => {
    const name = `ad_pending_${randomBytes(4).toString('hex')}`;
    await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
    const url = baseUrl();
    url.pathname = `/${name}`;
    const config = AppConfig.from({ databaseUrl: url.toString() });
    const database = await Database.open(config, { migrate: false });
    const app = await createApp(config, database);
    try {
      const res = await request(app.getHttpServer()).get('/readyz').expect(503);
      expect(res.body).toMatchObject({ statusCode: 503, code: 'NOT_READY', details: [{ field: 'migrations', reason: 'pending migrations' }] });
    } finally {
      await app.close();
      await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    }
  });
});
