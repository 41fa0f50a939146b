import { gaussian, poisson, Rng } from '../detection/core/rng';

/** Incident kinds injected into synthetic logs; each affected event carries its kind as `label`. */
export const INCIDENT_KINDS = ['latency_spike', 'error_burst', 'slow_degradation', 'traffic_drop'] as const;
export type IncidentKind = (typeof INCIDENT_KINDS)[number];

export interface SyntheticOptions {
  tenants: string[];
  /** Days of logs, ending at `end`. */
  days: number;
  end: Date;
  seed: number;
  /** Multiplies every service's request rate. */
  rateScale?: number;
  /** Inject labelled incidents (default true); false gives normal traffic only (soak benchmarks). */
  incidents?: boolean;
}

interface ServiceProfile {
  name: string;
  /** Requests per minute at the daily peak. */
  peakRate: number;
  medianMs: number;
  sigma: number;
  medianBytes: number;
  paths: string[];
  method: string;
  strategy?: string;
}

const SERVICES: ServiceProfile[] = [
  { name: 'seo-optimizer', peakRate: 6, medianMs: 180, sigma: 0.35, medianBytes: 5000, paths: ['/api/pages', '/api/keywords'], method: 'GET', strategy: 'LLM_RAG_v2' },
  { name: 'crawler', peakRate: 10, medianMs: 420, sigma: 0.45, medianBytes: 42000, paths: ['/crawl', '/fetch'], method: 'POST' },
  { name: 'indexer', peakRate: 4, medianMs: 90, sigma: 0.3, medianBytes: 800, paths: ['/index', '/reindex'], method: 'PUT' },
  { name: 'content-api', peakRate: 8, medianMs: 60, sigma: 0.4, medianBytes: 12000, paths: ['/v1/content', '/v1/search'], method: 'GET', strategy: 'TEMPLATE_v1' },
];

interface Incident {
  kind: IncidentKind;
  service: string;
  start: number;
  end: number;
}

export interface SyntheticEvent {
  timestamp: string;
  service: string;
  tenant: string;
  http: { request: { method: string; path: string }; response: { status_code: number; bytes: number } };
  performance: { duration_ms: number };
  seo_context?: { generation_strategy: string };
  label?: IncidentKind;
}

const MINUTE = 60_000;

/** Daily traffic shape: quiet at night (UTC 03:00), busiest mid-afternoon; 0.25..1. */
function dailyFactor(t: number): number {
  const hour = (t / 3_600_000) % 24;
  return 0.625 + 0.375 * Math.sin(((hour - 9) / 24) * 2 * Math.PI);
}

function planIncidents(rng: Rng, services: ServiceProfile[], from: number, to: number): Incident[] {
  const incidents: Incident[] = [];
  const days = Math.max(1, Math.round((to - from) / (24 * 60 * MINUTE)));
  const durations: Record<IncidentKind, number> = {
    latency_spike: 15 * MINUTE,
    error_burst: 10 * MINUTE,
    slow_degradation: 120 * MINUTE,
    traffic_drop: 30 * MINUTE,
  };
  for (let d = 0; d < days; d++) {
    for (const kind of INCIDENT_KINDS) {
      const service = services[rng.nextInt(services.length)].name;
      const span = durations[kind];
      const start = from + Math.floor(rng.nextDouble() * (to - from - span));
      incidents.push({ kind, service, start, end: start + span });
    }
  }
  return incidents;
}

/**
 * Seeded synthetic request logs for every tenant: several services each with its own latency and
 * size profile, a daily traffic pattern, and labelled incidents (latency spikes, error bursts, a
 * slow degradation, a traffic drop). Same options → same events.
 */
export function* generateSyntheticLogs(o: SyntheticOptions): Generator<SyntheticEvent> {
  const to = Math.floor(o.end.getTime() / MINUTE) * MINUTE;
  const from = to - o.days * 24 * 60 * MINUTE;
  const scale = o.rateScale ?? 1;
  for (let ti = 0; ti < o.tenants.length; ti++) {
    const tenant = o.tenants[ti];
    const rng = new Rng(o.seed * 7919 + ti);
    // Each tenant runs three or four of the services, with its own speed.
    const services = SERVICES.filter((_, i) => i < 3 || rng.nextDouble() < 0.5).map((s) => ({
      ...s,
      medianMs: s.medianMs * (0.7 + 0.6 * rng.nextDouble()),
    }));
    const incidents = o.incidents === false ? [] : planIncidents(rng, services, from, to);
    for (let t = from; t < to; t += MINUTE) {
      for (const s of services) {
        const active = incidents.filter((i) => i.service === s.name && t >= i.start && t < i.end);
        let rate = s.peakRate * scale * dailyFactor(t);
        if (active.some((i) => i.kind === 'traffic_drop')) rate *= 0.05;
        const n = poisson(rng, rate);
        for (let k = 0; k < n; k++) {
          const ts = t + Math.floor(rng.nextDouble() * MINUTE);
          let duration = s.medianMs * Math.exp(s.sigma * gaussian(rng));
          let status = rng.nextDouble() < 0.004 ? 404 : 200;
          if (rng.nextDouble() < 0.001) status = 500;
          let bytes = Math.round(s.medianBytes * Math.exp(0.3 * gaussian(rng)));
          let label: IncidentKind | undefined;
          for (const inc of active) {
            label = inc.kind;
            if (inc.kind === 'latency_spike') duration *= 6 + 6 * rng.nextDouble();
            if (inc.kind === 'slow_degradation') duration *= 1 + 4 * ((t - inc.start) / (inc.end - inc.start));
            if (inc.kind === 'error_burst' && rng.nextDouble() < 0.5) {
              status = rng.nextDouble() < 0.8 ? 503 : 500;
              bytes = Math.round(120 + 60 * rng.nextDouble());
              duration = duration * 0.3 + 5000 * (rng.nextDouble() < 0.3 ? 1 : 0);
            }
          }
          const event: SyntheticEvent = {
            timestamp: new Date(ts).toISOString(),
            service: s.name,
            tenant,
            http: { request: { method: s.method, path: s.paths[rng.nextInt(s.paths.length)] }, response: { status_code: status, bytes } },
            performance: { duration_ms: Math.round(duration * 10) / 10 },
          };
          if (s.strategy) event.seo_context = { generation_strategy: s.strategy };
          if (label) event.label = label;
          yield event;
        }
      }
    }
  }
}
