import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { ConfigError, loadConfig } from './config/app-config';
import { createApp } from './app.factory';
import { JsonLogger } from './modules/observability/json-logger';
import { Database } from './modules/store/database/database';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`anomaly-detector: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const logger = new JsonLogger(config.logLevel);
  Logger.overrideLogger(logger);
  const log = new Logger('Main');
  for (const w of config.warnings) log.warn(w);
  if (config.openTenants.length) {
    log.warn(
      `tenants without an API key are OPEN to anyone (development only): ${config.openTenants.join(', ')}; set TENANT_API_KEYS`,
    );
  }
  const database = await Database.open(config);
  let app;
  try {
    app = await createApp(config, database, logger);
  } catch (e) {
    await database.close();
    throw e;
  }
  try {
    await app.listen(config.port, '0.0.0.0');
  } catch (e) {
    await app.close();
    throw e;
  }
  log.log(`listening on port ${config.port} (environment ${config.environment}, tenants ${config.tenants.join(', ')})`);

  // Bound the shutdown: whatever hangs, the process is gone within 10 s of SIGTERM.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      setTimeout(() => {
        log.error(`shutdown did not finish in time after ${signal}; exiting`);
        process.exit(1);
      }, 9000).unref();
    });
  }
}

main().catch((e) => {
  new Logger('Main').error(`start-up failed: ${(e as Error).message}`, (e as Error).stack);
  process.exitCode = 1;
});
