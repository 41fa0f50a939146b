import { DDSketch } from '@datadog/sketches-js';
import type { DetectionRow } from '../../store/event.repository';
import type { CloseResult, ClosedMinute, PartialRow, SeriesGap, SeriesStateRow } from '../../store/series.repository';
import { MinuteSignals, SignalOptions } from './minute-signals';
import { emptyPoint, MinutePoint, seriesDetection, walkMinutes } from './minute-walk';
import { sketchToProto } from './sketch-proto';

const MINUTE = 60_000;

/** What closing a tenant's due minutes needs: all of it plain data, so it can cross to a worker thread. */
export interface CloseInput {
  /** Minutes before this (epoch ms, a minute boundary) are due. */
  horizon: number;
  /**
   * Services held back behind `horizon` (service → their own horizon, epoch ms, a minute boundary):
   * still receiving events behind the tenant's newest (SeriesRepository.serviceHorizons). Their partials
   * given here are of minutes before their own horizon only.
   */
  holds?: Record<string, number>;
  /** Stored per-service state: last closed minute and the signal tests' JSON. */
  states: SeriesStateRow[];
  /** Pending per-minute partials of minutes before the horizon. */
  partials: PartialRow[];
  signalOptions: SignalOptions;
  /** Queue the detections for Loki. */
  ship: boolean;
}

/** {@link CloseResult} plus what the caller should log (states that could not be restored). */
export interface CloseOutput extends CloseResult {
  warnings: string[];
}

/**
 * Closes a tenant's due minutes (the series job's computation, SPEC §7): sums the partials per
 * service and minute, merges minutes that closed before their events arrived (counts only, not
 * re-scored), feeds each service's minutes from its last closed one up to the horizon to its
 * signal tests (long silences as gaps) and turns findings into series detections. Pure: the
 * caller reads the inputs and stores the result in one transaction. `yieldNow` is awaited between
 * minutes (in-process callers give requests the event loop there).
 */
export async function closeMinutes(input: CloseInput, yieldNow: () => Promise<void> | void = () => undefined): Promise<CloseOutput> {
  const { states, partials, signalOptions, ship } = input;
  const holds = input.holds ?? {};
  const byService = new Map<string, Map<number, MinutePoint>>();
  for (const p of partials) {
    const minutes = byService.get(p.service) ?? new Map<number, MinutePoint>();
    const t = new Date(p.minute).getTime();
    const point = minutes.get(t) ?? emptyPoint();
    point.count += p.count;
    point.errors += p.errors;
    if (typeof p.latencies === 'string') {
      if (p.latencies) for (const l of p.latencies.split(',')) point.latencies.push(Number(l));
    } else for (const l of p.latencies) point.latencies.push(l);
    point.anomalies += p.anomalies;
    point.bytesN += p.bytesN;
    point.bytesLogSum += p.bytesLogSum;
    point.bytesLogSq += p.bytesLogSq;
    if (p.bytesLogMax !== null) point.bytesMax = Math.max(point.bytesMax, p.bytesLogMax);
    if (p.bytesLogMin !== null) point.bytesMin = Math.min(point.bytesMin, p.bytesLogMin);
    minutes.set(t, point);
    byService.set(p.service, minutes);
  }
  // The same requests give the same sums whatever order their partial rows come back in (one pass
  // or many, a backfill or live writes): floating-point addition depends on the order.
  for (const minutes of byService.values()) for (const point of minutes.values()) point.latencies.sort((x, y) => x - y);
  const stateOf = new Map(states.map((s) => [s.service, s]));
  const services = new Set([...stateOf.keys(), ...byService.keys()]);
  const minutes: ClosedMinute[] = [];
  const newStates: SeriesStateRow[] = [];
  const detections: DetectionRow[] = [];
  const gaps: SeriesGap[] = [];
  const warnings: string[] = [];

  for (const service of services) {
    const points = byService.get(service) ?? new Map<number, MinutePoint>();
    const dataMinutes = [...points.keys()].sort((a, b) => a - b);
    const state = stateOf.get(service);
    const horizon = Math.min(input.horizon, holds[service] ?? Infinity);
    // A service's series starts at its first event, not at some earlier time of the tenant.
    const start = state ? new Date(state.lastMinute).getTime() + MINUTE : (dataMinutes[0] ?? Infinity);
    // Minutes that closed before these events arrived: merge the counts, do not re-score the past.
    for (const t of dataMinutes) if (t < start) minutes.push(closedMinute(service, t, points.get(t)!, true));
    // Nothing new to close (most ticks: they run more often than minutes end): state unchanged.
    if (!Number.isFinite(start) || start >= horizon) continue;
    let signals: MinuteSignals | undefined;
    if (state?.detectors) {
      try {
        signals = MinuteSignals.fromJSON(state.detectors, signalOptions);
      } catch (e) {
        // An older build's state (or an unreadable one) must not block the tenant's series: start afresh.
        warnings.push(`series state of ${service} cannot be restored (${(e as Error).message}); starting new signal tests`);
      }
    }
    signals ??= new MinuteSignals(signalOptions);
    for (const step of walkMinutes(signals, points, dataMinutes, start, horizon)) {
      await yieldNow();
      if (step.type === 'gap') {
        gaps.push({ service, from: new Date(step.from), to: new Date(step.to) });
        continue;
      }
      const closed = closedMinute(service, step.t, step.point, false);
      minutes.push(closed);
      const figures = { count: closed.count, errors: closed.errors, p50: closed.p50, p95: closed.p95, p99: closed.p99, bytes: closed.bytesGeomean };
      for (const f of step.findings) detections.push(seriesDetection(service, step.t, f, signalOptions.alpha, figures, ship));
    }
    newStates.push({ service, lastMinute: new Date(horizon - MINUTE), detectors: signals.toJSON() as unknown as Record<string, unknown> });
  }
  return { minutes, states: newStates, detections, gaps, warnings };
}

/** A minute's stored figures: counts, latency quantiles and sketch (DDSketch, 1 % relative accuracy), size geomean. */
function closedMinute(service: string, t: number, p: MinutePoint, late: boolean): ClosedMinute {
  let sketch: DDSketch | null = null;
  if (p.latencies.length) {
    sketch = new DDSketch();
    for (const l of p.latencies) sketch.accept(l);
  }
  const q = (x: number) => (sketch ? Math.round(sketch.getValueAtQuantile(x) * 100) / 100 : null);
  return {
    service,
    minute: new Date(t),
    count: p.count,
    errors: p.errors,
    anomalies: p.anomalies,
    bytesGeomean: p.bytesN ? Math.round(Math.expm1(p.bytesLogSum / p.bytesN)) : null,
    p50: q(0.5),
    p95: q(0.95),
    p99: q(0.99),
    sketch: sketch ? Buffer.from(sketchToProto(sketch)) : null,
    late,
  };
}
