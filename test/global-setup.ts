import 'reflect-metadata';
import { AppConfig } from '../src/config/app-config';
import { Database } from '../src/modules/store/database/database';
import { EmbeddedPostgres } from '../src/modules/store/database/embedded-postgres';

/**
 * Integration tests run on real PostgreSQL: DATABASE_URL when set (CI points it at a fresh
 * database), otherwise a throwaway embedded server. Migrations are applied once here, exactly as
 * the service applies them at start-up.
 */
export default async function globalSetup(): Promise<void> {
  if (!process.env.DATABASE_URL) {
    const embedded = new EmbeddedPostgres({ dataDir: '', port: 0, ephemeral: true, database: 'anomaly_detector_test' });
    process.env.DATABASE_URL = await embedded.start();
    (globalThis as { __embeddedPg?: EmbeddedPostgres }).__embeddedPg = embedded;
  }
  const db = await Database.open(AppConfig.from({ databaseUrl: process.env.DATABASE_URL, dbConnectTimeoutSeconds: 20 }));
  await db.close();
}
