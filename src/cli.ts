import 'reflect-metadata';
import { INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { closeSync, openSync, writeSync, renameSync, fsyncSync, mkdirSync } from 'fs';
import { dirname, isAbsolute, relative } from 'path';
import { Command as CommanderCommand, CommanderError, Option } from 'commander';
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
import { buildIncidentReport, formatIncidentReport, IncidentLabel, FoundIncident } from './modules/detection/evaluation/incident-report';
import { foundIncidentsOf, labelsFromEvents, readLabelFile } from './modules/detection/evaluation/replay-labels';

/** A path as a user would type it: relative to the working directory when inside it, else as is. */
function shownPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}
import { ProgressReporter } from './common/progress-reporter';

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
async function replayEvents(config: AppConfig, input: string, output: string, labelFile?: string): Promise<void> {
  // A bad labels file is refused before the replay runs, not after it.
  const fileLabels = labelFile ? readLabelFile(labelFile, config.defaultTenant) : null;
  const dataset = await readTrainingDataset(input, config.defaultTenant, config.ingestMaxMetadataBytes);
  if (dataset.invalid) process.stderr.write(`skipped ${dataset.invalid} invalid items, e.g. ${JSON.stringify(dataset.examples.slice(0, 2))}\n`);
  const eventLabels: IncidentLabel[] = [];
  const found: FoundIncident[] = [];
  let from = Infinity;
  let to = -Infinity;
  await withContext(config, async (ctx) => {
    const registry = ctx.get(ModelRegistryService);
    mkdirSync(dirname(output), { recursive: true });
    const fd = openSync(output, 'w');
    const total = [...dataset.byTenant.values()].reduce((n, d) => n + d.events.length, 0);
    const progress = new ProgressReporter('replay', total, 'events');
    try {
      for (const [tenant, data] of dataset.byTenant) {
        const active = config.tenants.includes(tenant) ? await registry.active(tenant) : null;
        const engine = new ReplayEngine(active?.model ?? null, active?.version ?? null, replaySettingsOf(config));
        const events = [...data.events].sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
        for (let i = 0; i < events.length; i += 5000) {
          engine.addEvents(events.slice(i, i + 5000));
          progress.increment(Math.min(5000, events.length - i), tenant);
        }
        await engine.finish();
        for (const d of engine.detections) writeSync(fd, JSON.stringify({ tenant, ...d }) + '\n');
        process.stdout.write(
          `${tenant}: ${engine.counts.events} events, ${engine.counts.eventAnomalies} event anomalies, ${engine.counts.seriesAnomalies} series anomalies, ${engine.counts.incidents} incidents (model ${active?.version ?? 'none: baselines'})\n`,
        );
        found.push(...foundIncidentsOf(tenant, engine.incidents));
        if (!fileLabels) eventLabels.push(...labelsFromEvents(tenant, data.events, data.labels));
        if (events.length) {
          from = Math.min(from, events[0].timestamp.getTime());
          to = Math.max(to, events[events.length - 1].timestamp.getTime() + 60_000);
        }
      }
    } finally {
      progress.stop();
      closeSync(fd);
    }
  });
  process.stdout.write(`wrote ${output}\n`);
  // The incident report of `npm run evaluate`, when the input carries labels (or a labels file is given).
  const labels = fileLabels ?? eventLabels;
  if (labels.length && to > from) {
    const report = buildIncidentReport(labels, found, { tenants: [...dataset.byTenant.keys()], from, to });
    process.stdout.write('\n' + formatIncidentReport(report));
  }
}

/** Parsed options of a command, by camel-cased name (`--input-dir` → `inputDir`). */
type Options = Record<string, string | boolean | undefined>;

/** An option as commander declares it: flags (`--days <n>`), help text, default, allowed values. */
type OptionSpec = { flags: string; help: string; default?: string; choices?: readonly string[] };

type Command = { describe: string; options?: OptionSpec[]; run: (config: AppConfig, opts: Options) => Promise<void> };

const str = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);

const COMMANDS: Record<string, Command> = {
  scheduler: {
    describe: 'run the detection/retrain loop; joins a running service safely (advisory locks)',
    options: [
      { flags: '--tenant <tenant>', help: 'only this tenant (default: every enabled tenant)' },
      { flags: '--once', help: 'one pass, then exit' },
    ],
    run: async (config, opts) => {
      const values = { tenant: str(opts.tenant), once: opts.once === true };
      if (values.tenant && !config.tenants.includes(values.tenant)) {
        throw new Error(`tenant ${values.tenant} is not enabled (enabled: ${config.tenants.join(', ')})`);
      }
      const tenants = values.tenant ? [values.tenant] : config.tenants;
      // The loop is driven here, not by the in-service timer.
      await withContext(Object.assign(new AppConfig(), config, { schedulerEnabled: false }), async (ctx) => {
        const scheduler = ctx.get(SchedulerService);
        // The loop runs each tenant once per interval across replicas; --once runs now (under the lock only).
        const tickOnce = async () => {
          for (const r of await scheduler.tick(tenants, undefined, { scheduled: !values.once }))
            process.stdout.write(JSON.stringify(r) + '\n');
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
    describe: 'write seeded synthetic logs with labelled incidents for every tenant (NDJSON)',
    options: [
      { flags: '--days <n>', help: 'days of traffic, in (0, 60]', default: '2' },
      { flags: '--seed <s>', help: 'integer seed of the generator', default: '7' },
      { flags: '--out <file>', help: 'output file (default: TRAINING_DATASET_PATH)' },
      { flags: '--end <iso>', help: 'end of the generated range, ISO 8601 (default: now)' },
    ],
    run: async (config, opts) => {
      const values = { days: str(opts.days), seed: str(opts.seed), out: str(opts.out), end: str(opts.end) };
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
      // Progress in hours of generated traffic, per tenant (each tenant's traffic is generated in time order).
      const hours = Math.ceil(days * 24);
      const progress = new ProgressReporter('generate-data', hours * config.tenants.length, 'tenant-hours');
      const startMs = end.getTime() - days * 86_400_000;
      for (const e of generateSyntheticLogs({ tenants: config.tenants, days, end, seed })) {
        const c = counts.get(e.tenant) ?? { events: 0, labelled: 0 };
        c.events++;
        if (e.label) c.labelled++;
        counts.set(e.tenant, c);
        buffer += JSON.stringify(e) + '\n';
        if (buffer.length > 1 << 20) {
          writeSync(fd, buffer);
          buffer = '';
          const done = (counts.size - 1) * hours + Math.floor((Date.parse(String(e.timestamp)) - startMs) / 3_600_000);
          progress.update(Math.max(0, done), e.tenant);
        }
      }
      progress.stop();
      writeSync(fd, buffer);
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tmp, out);
      for (const [tenant, c] of counts) process.stdout.write(`${tenant}: ${c.events} events (${c.labelled} in incidents)\n`);
      process.stdout.write(`wrote ${out}\n`);
    },
  },
  train: {
    describe: 'train, register and activate a model per tenant from TRAINING_DATASET_PATH',
    options: [
      { flags: '--tenant <tenant>', help: 'only this tenant (default: every enabled tenant)' },
      { flags: '--input <file>', help: 'JSON array or NDJSON of events (default: TRAINING_DATASET_PATH)' },
    ],
    run: async (config, opts) => {
      const values = { tenant: str(opts.tenant), input: str(opts.input) };
      const input = values.input ?? config.trainingDatasetPath;
      if (values.tenant && !config.tenants.includes(values.tenant)) {
        throw new Error(`tenant ${values.tenant} is not enabled (enabled: ${config.tenants.join(', ')})`);
      }
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
        // Training runs in a worker: the bar counts tenants and its clock keeps moving meanwhile.
        const progress = new ProgressReporter('train', tenants.length, 'tenants');
        for (const [i, tenant] of tenants.entries()) {
          const data = dataset.byTenant.get(tenant);
          progress.update(i, data?.events.length ? `${tenant} (${data.events.length} events)` : tenant);
          if (!data?.events.length) {
            process.stdout.write(`${tenant}: no events in ${input}; no model\n`);
            continue;
          }
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
              file: file && shownPath(file),
            }) + '\n',
          );
        }
        progress.stop();
      });
    },
  },
  replay: {
    describe:
      'backtest: --format nab scores NAB CSVs with the series detector (--input F --output G | --input-dir D --output-dir O); ' +
      '--format ndjson replays events (ingest shape, optional tenant) through event and series detection into NDJSON detections',
    options: [
      { flags: '--input <file>', help: 'input file (NAB CSV, or events as JSON/NDJSON with --format ndjson)' },
      { flags: '--output <file>', help: 'output file' },
      { flags: '--input-dir <dir>', help: 'folder of NAB CSVs (recursive), with --output-dir' },
      { flags: '--output-dir <dir>', help: 'folder for the scored CSVs' },
      { flags: '--format <format>', help: 'input format', default: 'nab', choices: ['nab', 'ndjson'] },
      {
        flags: '--labels <file>',
        help: 'with --format ndjson: labelled incidents (JSON array of {tenant?, service, kind, start, end, benign?}, as `npm run evaluate -- --write-dir D` writes) for an incident report; without it, the events\' own `label` fields are used when they carry any',
      },
    ],
    run: async (config, opts) => {
      // The pairing rules (file or folder, each with its output) live with the NAB replay.
      const args = ['input', 'output', 'input-dir', 'output-dir', 'format'].flatMap((flag) => {
        const v = str(opts[flag.replace(/-(\w)/g, (_m, c: string) => c.toUpperCase())]);
        return v === undefined ? [] : [`--${flag}`, v];
      });
      const { target, format } = parseReplayArgs(args);
      if (format === 'ndjson') {
        if (!('input' in target)) throw new Error('--format ndjson takes --input F --output G');
        await replayEvents(config, target.input, target.output, str(opts.labels));
        return;
      }
      if (opts.labels !== undefined) throw new Error('--labels is for --format ndjson (NAB results are scored with the NAB scorer)');
      const started = Date.now();
      let progress: ProgressReporter | undefined;
      const r = replayNab(target, {
        format,
        onFile: (done, total, file) => (progress ??= new ProgressReporter('replay', total, 'files')).update(done, file),
      });
      progress?.stop();
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

/** Usage errors (unknown command or option, a bad value): exit code 2, as the service's config errors. */
const USAGE_ERROR = 2;

/**
 * The command line, declared with commander: `--help` on the program and on every command, errors
 * naming the unknown option or the allowed values. Configuration is loaded only when a command
 * runs, so `--help` works without a database or a valid environment.
 */
function buildProgram(ran: { code: number }): CommanderCommand {
  const program = new CommanderCommand('cli.js')
    .usage('<command> [options]   (npm run <command> -- [options])')
    .description('anomaly-detector command line: data, training, replay, scheduler, migrations. Settings come from the environment and .env, as for the service.')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .helpCommand(true);
  // Listed for help only: main() hands `evaluate` its arguments before this program parses anything.
  program.command('evaluate').description('send a seeded labelled scenario through a running service and report its incidents (evaluate --help)');
  for (const [name, spec] of Object.entries(COMMANDS)) {
    const cmd = program.command(name).description(spec.describe).exitOverride().showHelpAfterError("(add --help for usage)");
    for (const o of spec.options ?? []) {
      const option = new Option(o.flags, o.help);
      if (o.default !== undefined) option.default(o.default);
      if (o.choices) option.choices(o.choices);
      cmd.addOption(option);
    }
    cmd.action(async (opts: Options) => {
      let config: AppConfig;
      try {
        config = loadConfig();
      } catch (e) {
        if (e instanceof ConfigError) {
          process.stderr.write(`anomaly-detector: ${e.message}\n`);
          ran.code = 2;
          return;
        }
        throw e;
      }
      // Logs go to stderr so stdout carries only the command's own output.
      Logger.overrideLogger(new JsonLogger(config.logLevel, (line) => process.stderr.write(line + '\n')));
      await spec.run(config, opts);
    });
  }
  return program;
}

/**
 * One CLI behind the npm scripts. Uses the same configuration as the service; with the embedded
 * database it joins the server the running service holds instead of starting a second one.
 * Returns the exit code: 0 done (or help shown), 2 a usage or configuration error.
 */
async function main(argv: string[]): Promise<number> {
  // An HTTP client of a running service with options (and --help) of its own: no config, no database.
  if (argv[0] === 'evaluate') return runEvaluate(argv.slice(1));
  const ran = { code: 0 };
  const program = buildProgram(ran);
  if (!argv.length) {
    program.outputHelp({ error: true });
    return USAGE_ERROR;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : USAGE_ERROR;
    throw e;
  }
  return ran.code;
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
