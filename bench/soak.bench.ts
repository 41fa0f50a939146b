/**
 * Model-lifecycle soak: hours of simulated normal traffic (the synthetic generator's services and
 * daily cycle, no incidents) for several tenants, sent to the real service at full speed with
 * default settings and its own scheduler running, then the figures of issue 13's acceptance:
 * model versions activated per tenant, and the anomaly rate of that normal traffic in every
 * 10-minute window of event time (all events, and those scored by a model rather than a
 * cold-start baseline), against 2 × MODEL_CONTAMINATION.
 *
 *   npm run bench -- soak [--database-url URL] [--hours 6] [--tenants 2] [--rate-scale 10]
 *                         [--batch-minutes 1] [--interval 10] [--settle-ticks 3] [--seed 7]
 *                         [--env NAME=VALUE ...] [--service dist/src/main.js] [--keep-db]
 *
 * It creates a fresh database on the server of --database-url, starts `dist/src/main.js` with
 * DETECTION_INTERVAL_SECONDS=--interval (everything else default unless --env says otherwise; no
 * dataset file, no Loki), sends each tenant's traffic in event-time order, --batch-minutes of it
 * per request, tenants alternating, waits --settle-ticks scheduler periods, and reads the figures
 * from GET /models and the stored events. --service runs another build of the service (e.g. an
 * older commit's, as the reference of a before/after comparison).
 */
import { ChildProcess, spawn } from 'child_process';
import { cpus, loadavg, totalmem } from 'os';
import { join } from 'path';
import { parseArgs } from 'util';
import { Client } from 'pg';
import { generateSyntheticLogs, SyntheticEvent } from '../src/modules/retrain/synthetic-logs';
import { dropDatabase, freshDatabase, productionEnv, waitReady } from './bench-service';

const ROOT = join(__dirname, '..', '..');
const WINDOW_MS = 10 * 60_000;
const CONTAMINATION = 0.01;

interface WindowFigure {
  start: string;
  events: number;
  anomalies: number;
  modelEvents: number;
  modelAnomalies: number;
}

interface ModelItem {
  version: number;
  status: string;
  rows: number;
  created_at: string;
  activated_at: string | null;
  rejected_reason: string | null;
  stats: {
    training?: { holdout: number };
    validation?: { challenger: { anomalyRate: number } };
    global?: { timeOfDay?: boolean };
  };
}

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'database-url': {
        type: 'string',
        default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      },
      hours: { type: 'string', default: '6' },
      tenants: { type: 'string', default: '2' },
      'rate-scale': { type: 'string', default: '10' },
      'batch-minutes': { type: 'string', default: '1' },
      interval: { type: 'string', default: '10' },
      'settle-ticks': { type: 'string', default: '3' },
      seed: { type: 'string', default: '7' },
      'keep-db': { type: 'boolean', default: false },
      env: { type: 'string', multiple: true, default: [] },
      service: { type: 'string', default: join(ROOT, 'dist', 'src', 'main.js') },
    },
  });
  const hours = Number(values.hours);
  const tenants = Array.from({ length: Number(values.tenants) }, (_, i) => `soak-${String.fromCharCode(97 + i)}`);
  const keys = Object.fromEntries(tenants.map((t) => [t, `${t}-key-0123456789`]));
  const interval = Number(values.interval);
  const batchMs = Number(values['batch-minutes']) * 60_000;

  const dbUrl = await freshDatabase(values['database-url']!);
  const port = 19000 + Math.floor(Math.random() * 1000);
  const base = `http://127.0.0.1:${port}`;
  const extra = Object.fromEntries(
    (values.env as string[]).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const env = {
    ...process.env,
    // Production settings require a token for /prom.
    ...productionEnv('soak', dbUrl, tenants, keys, 'soak-metrics-token-0123456789', {
      PORT: String(port),
      DETECTION_INTERVAL_SECONDS: String(interval),
      ...extra,
    }),
  };
  const service: ChildProcess = spawn(process.execPath, [values.service!], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitReady(base, service);
    const end = new Date();
    const byTenant = new Map<string, SyntheticEvent[]>(tenants.map((t) => [t, []]));
    for (const e of generateSyntheticLogs({
      tenants,
      days: hours / 24,
      end,
      seed: Number(values.seed),
      rateScale: Number(values['rate-scale']),
      incidents: false,
    })) {
      byTenant.get(e.tenant)!.push(e);
    }
    for (const list of byTenant.values()) list.sort((a, b) => a.timestamp.localeCompare(b.timestamp));
    const from = end.getTime() - hours * 3_600_000;
    const started = Date.now();
    let sent = 0;
    const cursor = new Map(tenants.map((t) => [t, 0]));
    for (let t = from; t < end.getTime() + batchMs; t += batchMs) {
      for (const tenant of tenants) {
        const list = byTenant.get(tenant)!;
        let i = cursor.get(tenant)!;
        const batch: Record<string, unknown>[] = [];
        while (i < list.length && Date.parse(list[i].timestamp) < t + batchMs) {
          const { tenant: _t, label: _l, ...item } = list[i++];
          void _t;
          void _l;
          batch.push(item);
        }
        cursor.set(tenant, i);
        if (!batch.length) continue;
        const res = await fetch(`${base}/ingest`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': keys[tenant] },
          body: JSON.stringify(batch),
        });
        if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
        await res.arrayBuffer();
        sent += batch.length;
      }
    }
    const sendSeconds = (Date.now() - started) / 1000;
    process.stderr.write(
      `sent ${sent} events in ${sendSeconds.toFixed(1)} s; settling ${values['settle-ticks']} scheduler ticks\n`,
    );
    await new Promise((r) => setTimeout(r, Number(values['settle-ticks']) * interval * 1000));

    const pg = new Client({ connectionString: dbUrl });
    await pg.connect();
    const report: Record<string, unknown> = {};
    let worstAll = 0;
    let worstModel = 0;
    let maxActivated = 0;
    for (const tenant of tenants) {
      const models = (
        (await (await fetch(`${base}/models`, { headers: { 'x-api-key': keys[tenant] } })).json()) as {
          items: ModelItem[];
        }
      ).items;
      const rows: { w: string; events: string; anomalies: string; model_events: string; model_anomalies: string }[] = (
        await pg.query(
          `SELECT floor(extract(epoch FROM ts) * 1000 / $2)::bigint AS w, COUNT(*) AS events,
                  COUNT(*) FILTER (WHERE prediction = -1) AS anomalies,
                  COUNT(*) FILTER (WHERE model_version IS NOT NULL) AS model_events,
                  COUNT(*) FILTER (WHERE model_version IS NOT NULL AND prediction = -1) AS model_anomalies
             FROM events WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1`,
          [tenant, WINDOW_MS],
        )
      ).rows;
      const windows: WindowFigure[] = rows.map((r) => ({
        start: new Date(Number(r.w) * WINDOW_MS).toISOString(),
        events: Number(r.events),
        anomalies: Number(r.anomalies),
        modelEvents: Number(r.model_events),
        modelAnomalies: Number(r.model_anomalies),
      }));
      const total = windows.reduce(
        (a, w) => ({ e: a.e + w.events, a: a.a + w.anomalies, me: a.me + w.modelEvents, ma: a.ma + w.modelAnomalies }),
        { e: 0, a: 0, me: 0, ma: 0 },
      );
      const maxAll = Math.max(...windows.map((w) => w.anomalies / w.events));
      // A window counts for the model-scored figure when the model scored most of it.
      const modelWindows = windows.filter((w) => w.modelEvents >= w.events / 2);
      const maxModel = modelWindows.length
        ? Math.max(...modelWindows.map((w) => w.modelAnomalies / w.modelEvents))
        : null;
      const activated = models.filter((m) => m.activated_at !== null);
      worstAll = Math.max(worstAll, maxAll);
      worstModel = Math.max(worstModel, maxModel ?? 0);
      maxActivated = Math.max(maxActivated, activated.length);
      report[tenant] = {
        events: total.e,
        anomaly_rate: round(total.a / total.e),
        model_scored_events: total.me,
        model_anomaly_rate: total.me ? round(total.ma / total.me) : null,
        windows: windows.length,
        max_window_rate: round(maxAll),
        model_windows: modelWindows.length,
        max_model_window_rate: maxModel === null ? null : round(maxModel),
        windows_above_2c: windows
          .filter((w) => w.anomalies / w.events > 2 * CONTAMINATION)
          .map((w) => `${w.start} ${w.anomalies}/${w.events} (model ${w.modelAnomalies}/${w.modelEvents})`),
        versions: models.map((m) => ({
          version: m.version,
          status: m.status,
          rows: m.rows,
          time_of_day: m.stats.global?.timeOfDay ?? null,
          holdout_rate: m.stats.validation?.challenger.anomalyRate ?? null,
          activated_at: m.activated_at,
          rejected_reason: m.rejected_reason,
        })),
        versions_activated: activated.length,
      };
    }
    await pg.end();
    process.stdout.write(
      `machine: ${cpus()[0]?.model} x${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}\n`,
    );
    process.stdout.write(
      `soak: ${hours} h of normal traffic x ${tenants.length} tenants, ${sent} events sent in ${sendSeconds.toFixed(1)} s, DETECTION_INTERVAL_SECONDS=${interval}${Object.keys(extra).length ? `, ${JSON.stringify(extra)}` : ''}\n`,
    );
    for (const [tenant, r] of Object.entries(report)) process.stdout.write(`${tenant}: ${JSON.stringify(r)}\n`);
    process.stdout.write(
      JSON.stringify({
        max_versions_activated: maxActivated,
        max_window_anomaly_rate: round(worstAll),
        max_model_window_anomaly_rate: round(worstModel),
        bound: 2 * CONTAMINATION,
        pass: maxActivated <= 2 && worstAll <= 2 * CONTAMINATION,
      }) + '\n',
    );
  } finally {
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
    if (!values['keep-db']) await dropDatabase(dbUrl);
  }
}
