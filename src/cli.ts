import 'reflect-metadata';
import { INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { closeSync, openSync, writeSync, renameSync, fsyncSync, mkdirSync } from 'fs';
import { dirname } from 'path';
import { parseArgs } from 'util';
import { WorkerModule } from './app.module';
import { AppConfig, ConfigError, loadConfig } from './config/app-config';
import { JsonLogger } from './modules/observability/json-logger';
import { Database } from './modules/store/database/database';
import { readTrainingDataset } from './modules/retrain/training-dataset';
import { TrainingService } from './modules/retrain/training.service';
import { ModelRegistryService } from './modules/retrain/model-registry.service';
import { generateSyntheticLogs } from './modules/retrain/synthetic-logs';
import { SchedulerService } from './modules/retrain/retrain.jobs';
import { parseReplayArgs, replayNab } from './modules/detection/series/nab-replay';
import { ReplayEngine, replaySettingsOf } from './modules/detection/replay/replay-engine';
import { runEvaluate } from './modules/detection/evaluation/evaluate.command';

/** Progress for people at a terminal; silent when output is piped or in CI. */
const progress = (msg: string) => {
  if (process.stderr.isTTY) process.stderr.write(`${msg}\n`);
};

async function withContext<T>(config: AppConfig, fn: (ctx: INestApplicationContext) => Promise<T>): Promise<T> {
  const db = await Database.open(config);
  const ctx = await NestFactory.createApplicationContext(WorkerModule.register(config, db), { logger: false });
  try {
    await ctx.init();
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

/**
 * Replays events (a JSON array or NDJSON in the ingest shape, each with an optional `tenant`) with
 * each tenant's active model and the series detectors, writing one NDJSON line per detection. A
 * backtest: nothing is stored, nothing alerts.
 */
async function replayEvents(config: AppConfig, input: string, output: string): Promise<void> {
  const dataset = await readTrainingDataset(input, config.defaultTenant, config.ingestMaxMetadataBytes);
  if (dataset.invalid) process.stderr.write(`skipped ${dataset.invalid} invalid items, e.g. ${JSON.stringify(dataset.examples.slice(0, 2))}\n`);
  await withContext(config, async (ctx) => {
    const registry = ctx.get(ModelRegistryService);
    mkdirSync(dirname(output), { recursive: true });
    const fd = openSync(output, 'w');
    try {
      for (const [tenant, data] of dataset.byTenant) {
        const active = config.tenants.includes(tenant) ? await registry.active(tenant) : null;
        const engine = new ReplayEngine(active?.model ?? null, active?.version ?? null, replaySettingsOf(config));
        const events = [...data.events].sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
        for (let i = 0; i < events.length; i += 5000) {
          engine.addEvents(events.slice(i, i + 5000));
          progress(`${tenant}: ${Math.min(events.length, i + 5000)}/${events.length} events`);
        }
        await engine.finish();
        for (const d of engine.detections) writeSync(fd, JSON.stringify({ tenant, ...d }) + '\n');
        process.stdout.write(
          `${tenant}: ${engine.counts.events} events, ${engine.counts.eventAnomalies} event anomalies, ${engine.counts.seriesAnomalies} series anomalies (model ${active?.version ?? 'none: baselines'})\n`,
        );
      }
    } finally {
      closeSync(fd);
    }
  });
  process.stdout.write(`wrote ${output}\n`);
}

type Command = { describe: string; run: (config: AppConfig, args: string[]) => Promise<void> };

const COMMANDS: Record<string, Command> = {
  scheduler: {
    describe: 'run the detection/retrain loop [--tenant T] [--once]; joins a running service safely (advisory locks)',
    run: async (config, args) => {
      const { values } = parseArgs({ args, options: { tenant: { type: 'string' }, once: { type: 'boolean', default: false } } });
      if (values.tenant && !config.tenants.includes(values.tenant)) {
        throw new Error(`tenant ${values.tenant} is not enabled (enabled: ${config.tenants.join(', ')})`);
      }
      const tenants = values.tenant ? [values.tenant] : config.tenants;
      // The loop is driven here, not by the in-service timer.
      await withContext(Object.assign(new AppConfig(), config, { schedulerEnabled: false }), async (ctx) => {
        const scheduler = ctx.get(SchedulerService);
        const tickOnce = async () => {
          for (const r of await scheduler.tick(tenants)) process.stdout.write(JSON.stringify(r) + '\n');
        };
        await tickOnce();
        if (values.once) return;
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => void tickOnce().catch((e) => process.stderr.write(`${(e as Error).message}\n`)), config.detectionIntervalSeconds * 1000);
          for (const sig of ['SIGTERM', 'SIGINT'] as const) {
            process.once(sig, () => {
              clearInterval(timer);
              resolve();
            });
          }
        });
      });
    },
  },
  'generate-data': {
    describe: 'write seeded synthetic logs with labelled incidents for every tenant [--days N] [--seed S] [--out FILE]',
    run: async (config, args) => {
      const { values } = parseArgs({
        args,
        options: { days: { type: 'string', default: '2' }, seed: { type: 'string', default: '7' }, out: { type: 'string' }, end: { type: 'string' } },
      });
      const days = Number(values.days);
      const seed = Number(values.seed);
      if (!(days > 0 && days <= 60)) throw new Error('--days must be in (0, 60]');
      if (!Number.isInteger(seed)) throw new Error('--seed must be an integer');
      const end = values.end ? new Date(values.end) : new Date();
      if (Number.isNaN(end.getTime())) throw new Error('--end must be an ISO date-time');
      const out = values.out ?? config.trainingDatasetPath;
      // NDJSON, streamed: the file can be large. Written to a temp file and renamed when complete.
      mkdirSync(dirname(out), { recursive: true });
      const tmp = `${out}.${process.pid}.tmp`;
      const fd = openSync(tmp, 'w');
      const counts = new Map<string, { events: number; labelled: number }>();
      let buffer = '';
      for (const e of generateSyntheticLogs({ tenants: config.tenants, days, end, seed })) {
        const c = counts.get(e.tenant) ?? { events: 0, labelled: 0 };
        c.events++;
        if (e.label) c.labelled++;
        counts.set(e.tenant, c);
        buffer += JSON.stringify(e) + '\n';
        if (buffer.length > 1 << 20) {
          writeSync(fd, buffer);
          buffer = '';
          progress(`generated ${[...counts.values()].reduce((a, b) => a + b.events, 0)} events`);
        }
      }
      writeSync(fd, buffer);
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tmp, out);
      for (const [tenant, c] of counts) process.stdout.write(`${tenant}: ${c.events} events (${c.labelled} in incidents)\n`);
      process.stdout.write(`wrote ${out}\n`);
    },
  },
  train: {
    describe: 'train, register and activate a model per tenant from TRAINING_DATASET_PATH [--tenant T] [--input FILE]',
    run: async (config, args) => {
      const { values } = parseArgs({ args, options: { tenant: { type: 'string' }, input: { type: 'string' } } });
      const input = values.input ?? config.trainingDatasetPath;
      if (values.tenant && !config.tenants.includes(values.tenant)) {
        throw new Error(`tenant ${values.tenant} is not enabled (enabled: ${config.tenants.join(', ')})`);
      }
      progress(`reading ${input}`);
      const dataset = await readTrainingDataset(input, config.defaultTenant, config.ingestMaxMetadataBytes);
      if (dataset.invalid) {
        process.stderr.write(`skipped ${dataset.invalid} invalid items, e.g. ${JSON.stringify(dataset.examples.slice(0, 2))}\n`);
      }
      const tenants = values.tenant ? [values.tenant] : config.tenants;
      for (const t of dataset.byTenant.keys()) {
        if (!config.tenants.includes(t)) process.stderr.write(`ignoring events of tenant ${t}: not enabled\n`);
      }
      await withContext(config, async (ctx) => {
        const training = ctx.get(TrainingService);
        const registry = ctx.get(ModelRegistryService);
        let i = 0;
        for (const tenant of tenants) {
          i++;
          const data = dataset.byTenant.get(tenant);
          if (!data?.events.length) {
            process.stdout.write(`${tenant}: no events in ${input}; no model\n`);
            continue;
          }
          progress(`[${i}/${tenants.length}] training ${tenant} on ${data.events.length} events`);
          const started = Date.now();
          const r = await training.train(tenant, data.events, 'dataset', data.labels);
          const file = r.status === 'active' ? registry.writeModelFile(tenant, r.model) : undefined;
          process.stdout.write(
            JSON.stringify({
              tenant,
              version: r.version,
              status: r.status,
              rows: r.rows,
              serviceModels: r.serviceModels,
              ms: Date.now() - started,
              evaluation: r.evaluation,
              file,
            }) + '\n',
          );
        }
      });
    },
  },
  replay: {
    describe:
      'backtest: --format nab scores NAB CSVs with the series detector (--input F --output G | --input-dir D --output-dir O); ' +
      '--format ndjson replays events (ingest shape, optional tenant) through event and series detection into NDJSON detections',
    run: async (config, args) => {
      const { target, format } = parseReplayArgs(args);
      if (format === 'ndjson') {
        if (!('input' in target)) throw new Error('--format ndjson takes --input F --output G');
        await replayEvents(config, target.input, target.output);
        return;
      }
      const started = Date.now();
      const r = replayNab(target, { format, onFile: (done, total, file) => progress(`[${done}/${total}] ${file}`) });
      const out = 'output' in target ? target.output : target.outputDir;
      process.stdout.write(`replayed ${r.files} file(s), ${r.rows} rows in ${Date.now() - started} ms -> ${out}\n`);
    },
  },
  migrate: {
    describe: 'apply pending database migrations',
    run: async (config) => {
      const db = await Database.open(config, { migrate: false });
      try {
        const applied = await db.migrate();
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema is up to date\n');
      } finally {
        await db.close();
      }
    },
  },
  'migrate:revert': {
    describe: 'revert the last applied migration',
    run: async (config) => {
      const db = await Database.open(config, { migrate: false });
      try {
        await db.revertLastMigration();
        process.stdout.write('reverted the last migration\n');
      } finally {
        await db.close();
      }
    },
  },
};

function usage(): string {
  return (
    'usage: node dist/src/cli.js <command> [args]\n\ncommands:\n' +
    Object.entries(COMMANDS)
      .map(([name, c]) => `  ${name.padEnd(16)} ${c.describe}`)
      .join('\n') +
    '\n'
  );
}

/**
 * One CLI behind the npm scripts. Uses the same configuration as the service; with the embedded
 * database it joins the server the running service holds instead of starting a second one.
 */
async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === 'evaluate') return runEvaluate(args); // an HTTP client of a running service: no config, no database
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    process.stderr.write(name && name !== '--help' ? `unknown command: ${name}\n${usage()}` : usage());
    return name && name !== '--help' ? 2 : 0;
  }
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`anomaly-detector: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  // Logs go to stderr so stdout carries only the command's own output.
  Logger.overrideLogger(new JsonLogger(config.logLevel, (line) => process.stderr.write(line + '\n')));
  await command.run(config, args);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`anomaly-detector: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
