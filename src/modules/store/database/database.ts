import { Logger } from '@nestjs/common';
import { DataSource, DataSourceOptions } from 'typeorm';
import { AppConfig } from '../../../config/app-config';
import { ALL_MIGRATIONS } from '../../../../migrations';
import { ALL_ENTITIES } from '../entities';
import { EmbeddedPostgres } from './embedded-postgres';

const MIGRATION_LOCK = 'anomaly-detector:migrations';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * TypeORM options for our schema: migrations only, never synchronize. Every statement is cancelled
 * by the server after `statementTimeoutMs` (0: never), and the client gives up a little later: so a
 * request that gets an error never has its write committed afterwards.
 */
export function dataSourceOptions(url: string, opts: { statementTimeoutMs?: number } = {}): DataSourceOptions {
  const statementTimeoutMs = opts.statementTimeoutMs ?? 30_000;
  return {
    type: 'postgres',
    url,
    entities: ALL_ENTITIES,
    migrations: ALL_MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    synchronize: false,
    migrationsRun: false,
    applicationName: 'anomaly-detector',
    extra: {
      max: 20,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      ...(statementTimeoutMs > 0
        ? {
            statement_timeout: statementTimeoutMs,
            // A query stuck on a dead connection must fail rather than hang a request forever; the
            // margin lets the server's own cancellation (which rolls the statement back) come first.
            query_timeout: statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
          }
        : {}),
    },
  } as DataSourceOptions;
}

/** How much longer than the server's statement_timeout the client waits for an answer. */
export const CLIENT_TIMEOUT_MARGIN_MS = 5000;

/**
 * The service's database: an external server (`DATABASE_URL`) or the embedded one, a TypeORM data
 * source on it with retries while connecting, and the schema migrations. Closing it also stops an
 * embedded server this process owns.
 */
export class Database {
  private readonly logger = new Logger('Database');

  private constructor(
    readonly dataSource: DataSource,
    readonly url: string,
    private readonly embedded?: EmbeddedPostgres,
  ) {}

  /** Resolves where the database is (starting the embedded server when needed) and connects. */
  static async open(config: AppConfig, opts: { migrate?: boolean } = {}): Promise<Database> {
    const logger = new Logger('Database');
    let url = config.databaseUrl;
    let embedded: EmbeddedPostgres | undefined;
    if (config.storeBackend === 'memory' || !url) {
      if (config.storeBackend === 'memory' && url) {
        logger.warn('ANOMALY_STORE_BACKEND=memory: DATABASE_URL is ignored, using a throwaway embedded database');
      }
      embedded = new EmbeddedPostgres({
        dataDir: config.embeddedPgDataDir,
        port: config.storeBackend === 'memory' ? 0 : config.embeddedPgPort,
        ephemeral: config.storeBackend === 'memory',
        log: (m) => logger.log(m),
      });
      url = await embedded.start();
      logger.log(
        config.storeBackend === 'memory'
          ? 'using a throwaway embedded PostgreSQL (deleted at exit)'
          : `using embedded PostgreSQL (data in ${config.embeddedPgDataDir})`,
      );
    }
    const dataSource = new DataSource(dataSourceOptions(url, { statementTimeoutMs: config.dbStatementTimeoutMs }));
    const db = new Database(dataSource, url, embedded);
    try {
      await db.connect(config.dbConnectTimeoutSeconds * 1000);
      if (opts.migrate !== false) await db.migrate();
    } catch (e) {
      await db.close();
      throw e;
    }
    return db;
  }

  private async connect(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.dataSource.initialize();
        return;
      } catch (e) {
        if (Date.now() >= deadline) {
          throw new Error(`cannot connect to the database after ${attempt} attempts: ${(e as Error).message}`);
        }
        const wait = Math.min(5000, 250 * 2 ** Math.min(attempt, 5));
        this.logger.warn(`database not reachable (${(e as Error).message}); retrying in ${wait} ms`);
        await sleep(wait);
      }
    }
  }

  /**
   * Applies pending migrations under a PostgreSQL advisory lock, so replicas starting together
   * apply each migration once.
   */
  async migrate(): Promise<string[]> {
    return this.withMigrationSource(async (ds) => {
      const runner = ds.createQueryRunner();
      await runner.connect();
      try {
        await runner.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK]);
        const applied = await ds.runMigrations({ transaction: 'each' });
        for (const m of applied) this.logger.log(`applied migration ${m.name}`);
        return applied.map((m) => m.name);
      } finally {
        await runner.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATION_LOCK]).catch(() => undefined);
        await runner.release();
      }
    });
  }

  async revertLastMigration(): Promise<void> {
    await this.withMigrationSource((ds) => ds.undoLastMigration({ transaction: 'each' }));
  }

  /**
   * Schema changes run on their own short-lived connection without the statement timeout: a
   * migration over a large table (or waiting for another replica's migration lock) may rightly
   * take longer than any request should.
   */
  private async withMigrationSource<T>(work: (ds: DataSource) => Promise<T>): Promise<T> {
    const ds = new DataSource({ ...dataSourceOptions(this.url, { statementTimeoutMs: 0 }), extra: { max: 2 } } as DataSourceOptions);
    await ds.initialize();
    try {
      return await work(ds);
    } finally {
      await ds.destroy().catch(() => undefined);
    }
  }

  /** True when a query round-trips; false on any connection error. */
  async ping(timeoutMs = 2000): Promise<boolean> {
    try {
      await Promise.race([
        this.dataSource.query('SELECT 1'),
        sleep(timeoutMs).then(() => {
          throw new Error('ping timeout');
        }),
      ]);
      return true;
    } catch {
      return false;
    }
  }

  async hasPendingMigrations(): Promise<boolean> {
    return this.dataSource.showMigrations();
  }

  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy().catch(() => undefined);
    await this.embedded?.stop();
  }
}
