/**
 * Offline incident evaluation: `node dist/bench/index.js incidents [--seeds 1,2,3] [--rates 10,30]
 * [--days 2] [--tenants 2] [--alpha A] [--json]` (alpha: SERIES_ALPHA, default 1e-6). For every seed × rate × {no model, a model trained on day 1}
 * it generates the labelled scenario of `npm run evaluate` (src/modules/detection/evaluation/scenario.ts)
 * and runs it through the ReplayEngine — the same per-event scoring, per-minute signal tests
 * (series/minute-walk.ts) and incident policy (alerts/incident-policy.ts) as the live service, without
 * HTTP or a database — then prints the incident report's figures per run and in total. It is the fast
 * loop for checking that the detectors generalise over seeds and traffic levels; `npm run evaluate`
 * checks the same through the running API.
 */
import { parseArgs } from 'node:util';
import { buildIncidentReport, IncidentReport } from '../src/modules/detection/evaluation/incident-report';
import { foundIncidentsOf } from '../src/modules/detection/evaluation/replay-labels';
import { buildScenario, DAY_MS, ScenarioEvent } from '../src/modules/detection/evaluation/scenario';
import { LogEvent, parseLogEvent } from '../src/modules/detection/features/log-event';
import { AnomalyModel, DEFAULT_MODEL_PARAMS } from '../src/modules/detection/model/anomaly-model';
import { DEFAULT_REPLAY_SETTINGS, ReplayEngine, ReplaySettings } from '../src/modules/detection/replay/replay-engine';

const toLogEvents = (events: Iterable<ScenarioEvent>): LogEvent[] => {
  const out: LogEvent[] = [];
  for (const raw of events) {
    const parsed = parseLogEvent(raw, { maxMetadataBytes: 16_384 });
    if (parsed.ok) out.push(parsed.event);
  }
  return out;
};

interface Run {
  seed: number;
  rate: number;
  model: boolean;
  report: IncidentReport;
  ms: number;
}

/** One scenario through the replay, one report. */
async function evaluate(seed: number, rate: number, days: number, tenants: number, model: boolean, settings: ReplaySettings): Promise<Run> {
  const started = Date.now();
  const end = Date.UTC(2026, 10, 30, 0, 0);
  const scenario = buildScenario({ seed, rate, days, tenants, end, firstIncidentDay: model ? 1 : 0 });
  const found: Parameters<typeof buildIncidentReport>[1] = [];
  for (const tenant of scenario.tenants) {
    const events = toLogEvents(scenario.events(tenant));
    let trained: AnomalyModel | null = null;
    if (model) {
      const day1 = events.filter((e) => e.timestamp.getTime() < scenario.start + DAY_MS);
      trained = AnomalyModel.train(day1, DEFAULT_MODEL_PARAMS);
    }
    const engine = new ReplayEngine(trained, trained ? 1 : null, settings);
    for (let i = 0; i < events.length; i += 5000) engine.addEvents(events.slice(i, i + 5000));
    await engine.finish();
    found.push(...foundIncidentsOf(tenant, engine.incidents));
  }
  const from = model ? scenario.start + DAY_MS : scenario.start;
  const report = buildIncidentReport(scenario.labels, found, { tenants: scenario.tenants, from, to: scenario.end });
  return { seed, rate, model, report, ms: Date.now() - started };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seeds: { type: 'string', default: '1,2,3' },
      rates: { type: 'string', default: '10,30' },
      days: { type: 'string', default: '2' },
      tenants: { type: 'string', default: '2' },
      alpha: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run bench -- incidents [--seeds 1,2,3] [--rates 10,30] [--days 2] [--tenants 2] [--alpha A] [--json]\n');
    return;
  }
  const seeds = values.seeds.split(',').map(Number);
  const rates = values.rates.split(',').map(Number);
  const settings: ReplaySettings = values.alpha
    ? { ...DEFAULT_REPLAY_SETTINGS, signals: { ...DEFAULT_REPLAY_SETTINGS.signals, alpha: Number(values.alpha) } }
    : DEFAULT_REPLAY_SETTINGS;
  const runs: Run[] = [];
  for (const model of [false, true]) {
    for (const rate of rates) {
      for (const seed of seeds) {
        const r = await evaluate(seed, rate, Number(values.days), Number(values.tenants), model, settings);
        runs.push(r);
        const k = r.report.kinds.map((x) => `${x.kind} ${x.inTime}/${x.labels}`).join(', ');
        const late = r.report.outcomes
          .filter((o) => !o.inTime)
          .map((o) => `${o.label.tenant}/${o.label.service} ${o.label.kind} at ${new Date(o.label.start).toISOString()} ${o.delayMs === null ? 'missed' : `${Math.round(o.delayMs / 60_000)} min`}${o.incident ? ` (open incident since ${o.incident.started_at}: ${o.incident.signals.map((x) => x.signal).join(',')})` : ''}`);
        process.stdout.write(
          `${model ? 'model' : 'no model'} rate ${rate} seed ${seed}: ${k}; false ${r.report.falseIncidents.count} (${r.report.falseIncidents.perTenantDay.toFixed(2)}/tenant-day); benign paged ${r.report.benign.filter((b) => b.paged).length}; ${r.report.acceptance.pass ? 'PASS' : 'FAIL'} (${r.ms} ms)${late.length ? `\n    late/missed: ${late.join('; ')}` : ''}\n`,
        );
        for (const f of r.report.falseIncidents.incidents) process.stdout.write(`    false: ${f.tenant}/${f.service} ${f.started_at} ${f.signals.map((s) => s.signal).join(',')}\n`);
      }
    }
  }
  const labelled = runs.reduce((n, r) => n + r.report.outcomes.length, 0);
  const inTime = runs.reduce((n, r) => n + r.report.outcomes.filter((o) => o.inTime).length, 0);
  const falses = runs.reduce((n, r) => n + r.report.falseIncidents.count, 0);
  const tenantDays = runs.reduce((n, r) => n + r.report.period.tenantDays, 0);
  const summary = { runs: runs.length, labelled, inTime, falseIncidents: falses, falsePerTenantDay: falses / tenantDays, passed: runs.filter((r) => r.report.acceptance.pass).length };
  if (values.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stdout.write(`total: ${inTime}/${labelled} incidents paged in time, ${falses} false incidents over ${tenantDays} tenant-days (${summary.falsePerTenantDay.toFixed(3)}/tenant-day), ${summary.passed}/${runs.length} runs PASS\n`);
}
