import { INestApplication } from '@nestjs/common';
import { randomBytes } from 'crypto';
import { AppConfig } from '../../src/config/app-config';
import { createApp } from '../../src/app.factory';
import { Database } from '../../src/modules/store/database/database';

export interface TestApp {
  app: INestApplication;
  http: ReturnType<INestApplication['getHttpServer']>;
  config: AppConfig;
  database: Database;
  close(): Promise<void>;
}

/** A fresh tenant id, so tests never share rows. */
export const newTenantId = (prefix = 't') => `${prefix}-${randomBytes(5).toString('hex')}`;

/** A fresh API key. */
export const newApiKey = () => `key-${randomBytes(12).toString('hex')}`;

/**
 * The accepted age of live events in tests: the factories date their events on fixed days (2025-11-14)
 * so that runs are reproducible, which the default window (a week) would refuse. Specs of the window
 * itself set `ingestMaxAgeHours` explicitly.
 */
export const FIXTURE_MAX_AGE_HOURS = 24 * 365 * 20;

/** The real application on the test database, built from a config object (never process.env). */
export async function startTestApp(overrides: Partial<AppConfig> = {}): Promise<TestApp> {
  // The scheduler's own timer stays off in tests: they call tick() when they mean it.
  const config = AppConfig.from({ environment: 'test', databaseUrl: process.env.DATABASE_URL, schedulerEnabled: false, ingestMaxAgeHours: FIXTURE_MAX_AGE_HOURS, ...overrides });
  const database = await Database.open(config, { migrate: false });
  const app = await createApp(config, database);
  return {
    app,
    http: app.getHttpServer(),
    config,
    database,
    close: () => app.close(),
  };
}
