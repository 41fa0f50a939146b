import { LogEvent } from '../../src/modules/detection/features/log-event';
import { Rng } from '../../src/modules/detection/core/rng';

/** Seeded normal traffic for tests: lognormal latency around `medianMs`, mostly 200s. */
export function normalTraffic(n: number, opts: { seed?: number; services?: string[]; medianMs?: number; start?: number } = {}): LogEvent[] {
  const rng = new Rng(opts.seed ?? 1);
  const services = opts.services ?? ['api'];
  const start = opts.start ?? Date.UTC(2025, 10, 14);
  const out: LogEvent[] = [];
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(Math.max(rng.nextDouble(), 1e-12))) * Math.cos(2 * Math.PI * rng.nextDouble());
    out.push({
      timestamp: new Date(start + Math.floor(rng.nextDouble() * 86_400_000)),
      service: services[i % services.length],
      durationMs: (opts.medianMs ?? 100) * Math.exp(0.3 * g),
      statusCode: 200,
      bytes: 4000 + rng.nextInt(2000),
      metadata: {},
    });
  }
  return out;
}
