import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { ConfigError, loadConfig } from './config/app-config';
import { createApp } from './app.factory';
import { backgroundStopMs, GracefulShutdown } from './modules/observability/graceful-shutdown';
import { JsonLogger } from './modules/observability/json-logger';
import { Database } from './modules/store/database/database';

/** Draining ends once no request has come or ended for this long (and none is in progress). */
const LINGER_MS = 2000;

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

  // Kubernetes' stop: SIGTERM, then SIGKILL after terminationGracePeriodSeconds. Drain first
  // (readiness fails, new requests 503 + Connection: close, in-flight ones finish), then stop the
  // background loops between batches and close the database, all within SHUTDOWN_GRACE_SECONDS.
  const drain = app.get(GracefulShutdown);
  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    setTimeout(() => {
      log.error(`shutdown did not finish within SHUTDOWN_GRACE_SECONDS=${config.shutdownGraceSeconds} after ${signal}; exiting`);
      process.exit(1);
    }, config.shutdownGraceSeconds * 1000).unref();
    log.log(`${signal}: draining (grace ${config.shutdownGraceSeconds} s)`);
    drain.begin();
    // Requests in progress finish; then keep answering 503 until none has come for a moment, so a
    // client that got its last answer is told to go elsewhere instead of finding the port closed.
    // Clients that keep sending (a load balancer still routing here) cannot hold the stop: draining
    // ends in time for the background loops to stop within the grace period.
    const drainUntil = started + Math.max(LINGER_MS, config.shutdownGraceSeconds * 1000 - backgroundStopMs(config));
    await drain.quiet(LINGER_MS, drainUntil);
    log.log(
      `no request in progress after ${Date.now() - started} ms${Date.now() >= drainUntil ? ' (drain deadline reached, clients still sending)' : ''}; stopping background work`,
    );
    await app.close();
    log.log(`stopped after ${Date.now() - started} ms`);
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      stop(signal).catch((e) => {
        log.error(`shutdown failed: ${(e as Error).message}`, (e as Error).stack);
        process.exit(1);
      });
    });
  }
}

main().catch((e) => {
  new Logger('Main').error(`start-up failed: ${(e as Error).message}`, (e as Error).stack);
  process.exitCode = 1;
});
