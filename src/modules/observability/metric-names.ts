import { makeCounterProvider } from '@willsoto/nestjs-prometheus';
import type { Counter, Registry } from 'prom-client';

/**
 * Prefix of every metric the service defines, so its series never collide with other applications'
 * in a shared Prometheus (`http_requests_total` is everybody's). prom-client's process and Node.js
 * metrics keep their standard names (`process_*`, `nodejs_*`), as every Node exporter does.
 */
export const METRIC_PREFIX = 'anomaly_detector_';

/** Label values a counter is created with at zero, for every known tenant, before any increment. */
type KnownLabels = readonly Record<string, string>[];

const knownLabels = new Map<string, KnownLabels>();

/** Every combination of the given label values: `{a: [1,2], b: [3]}` → `[{a:1,b:3}, {a:2,b:3}]`. */
export function labelCombinations(values: Record<string, readonly string[]>): Record<string, string>[] {
  let out: Record<string, string>[] = [{}];
  for (const [name, list] of Object.entries(values)) out = out.flatMap((o) => list.map((v) => ({ ...o, [name]: v })));
  return out;
}

/**
 * A counter provider (`makeCounterProvider`) whose series for the known label values exist at 0 from
 * start-up, per tenant: `increase()` and `rate()` need a sample before the first increment, or the
 * first batch after a start is never seen. `known` lists the label sets other than `tenant`.
 */
export function makeZeroedCounterProvider(options: { name: string; help: string; labelNames: string[]; known: KnownLabels }) {
  knownLabels.set(options.name, options.known);
  return makeCounterProvider({ name: options.name, help: options.help, labelNames: options.labelNames });
}

/** Creates the known series of every zeroed counter in `registry` at 0 for each tenant. */
export function zeroKnownCounters(registry: Registry, tenants: readonly string[]): void {
  for (const [name, known] of knownLabels) {
    const counter = registry.getSingleMetric(name) as Counter<string> | undefined;
    if (!counter) continue;
    for (const tenant of tenants) for (const labels of known) counter.inc({ tenant, ...labels }, 0);
  }
}
