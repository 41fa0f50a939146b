import { randomUUID } from 'crypto';
import type { DetectionRow } from '../../store/event.repository';
import { MinuteSignals, MinuteStats, SignalFinding } from './minute-signals';

const MINUTE = 60_000;

/**
 * Silent minutes fed one by one before the rest of the silence is recorded as a gap instead: long
 * enough for a dead service to stay an incident for hours, short enough that a backfill of an old
 * day or a service retired for good costs a bounded amount of work.
 */
export const MAX_EMPTY_RUN = 240;

/** What the events of one service and minute add up to. */
export interface MinutePoint {
  count: number;
  errors: number;
  /** duration_ms of the minute's requests (the live path also keeps a latency sketch of them). */
  latencies: number[];
  anomalies: number;
  bytesN: number;
  /** Σ ln(1 + bytes), Σ ln(1 + bytes)², and the extremes of ln(1 + bytes) (±Infinity without any). */
  bytesLogSum: number;
  bytesLogSq: number;
  bytesMax: number;
  bytesMin: number;
}

export const emptyPoint = (): MinutePoint => ({ count: 0, errors: 0, latencies: [], anomalies: 0, bytesN: 0, bytesLogSum: 0, bytesLogSq: 0, bytesMax: -Infinity, bytesMin: Infinity });

/** Adds one event to a minute's point (the replay path; the live path sums in SQL). */
export function addEvent(p: MinutePoint, e: { durationMs?: number | null; statusCode?: number | null; bytes?: number | null; anomalous: boolean }): void {
  p.count++;
  if ((e.statusCode ?? 0) >= 500) p.errors++;
  if (e.durationMs !== undefined && e.durationMs !== null) p.latencies.push(e.durationMs);
  if (e.anomalous) p.anomalies++;
  if (typeof e.bytes === 'number' && e.bytes >= 0 && Number.isFinite(e.bytes)) {
    const v = Math.log1p(e.bytes);
    p.bytesN++;
    p.bytesLogSum += v;
    p.bytesLogSq += v * v;
    p.bytesMax = Math.max(p.bytesMax, v);
    p.bytesMin = Math.min(p.bytesMin, v);
  }
}

/** A minute's sums as the signal tests take them (latency and size on the ln(1 + x) scale). */
export function statsOf(p: MinutePoint): MinuteStats {
  let latLogSum = 0;
  let latLogSq = 0;
  let latN = 0;
  let latMax = 0;
  let latMin = 0;
  for (const l of p.latencies) {
    if (!(l >= 0) || !Number.isFinite(l)) continue;
    const v = Math.log1p(l);
    latLogSum += v;
    latLogSq += v * v;
    latMax = latN ? Math.max(latMax, v) : v;
    latMin = latN ? Math.min(latMin, v) : v;
    latN++;
  }
  return {
    count: p.count,
    errors: p.errors,
    latN,
    latLogSum,
    latLogSq,
    bytesN: p.bytesN,
    bytesLogSum: p.bytesLogSum,
    bytesLogSq: p.bytesLogSq,
    anomalies: p.anomalies,
    latMax,
    latMin,
    bytesMax: p.bytesN ? p.bytesMax : 0,
    bytesMin: p.bytesN ? p.bytesMin : 0,
  };
}

export type WalkStep = { type: 'minute'; t: number; point: MinutePoint; findings: SignalFinding[] } | { type: 'gap'; from: number; to: number };

/**
 * Feeds a service's minutes [start, horizon) to its signal tests, oldest first, empty minutes
 * included — except that a silence longer than MAX_EMPTY_RUN minutes becomes one gap up to the next
 * minute with events (or the horizon). `dataMinutes` are the minutes of `points`, sorted. Shared by
 * the live series job and the replay, so both decide the same.
 */
export function* walkMinutes(signals: MinuteSignals, points: Map<number, MinutePoint>, dataMinutes: number[], start: number, horizon: number): Generator<WalkStep> {
  let next = 0;
  for (let t = start; t < horizon; ) {
    while (next < dataMinutes.length && dataMinutes[next] < t) next++;
    const point = points.get(t) ?? emptyPoint();
    if (point.count === 0 && signals.emptyRun >= MAX_EMPTY_RUN) {
      const to = next < dataMinutes.length ? Math.min(dataMinutes[next], horizon) : horizon;
      yield { type: 'gap', from: signals.openGap(t), to };
      t = to;
      continue;
    }
    yield { type: 'minute', t, point, findings: signals.update(t, statsOf(point)) };
    t += MINUTE;
  }
}

/** The minute's figures a series detection carries in its metadata. */
export interface MinuteFigures {
  count: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  bytes: number | null;
}

/**
 * A finding as a series detection (SPEC §4: score = p − alpha, negative = anomalous; likelihood = 1 − p),
 * with what the incident policy reads in its metadata (signal, severity, direction, since, window).
 */
export function seriesDetection(service: string, t: number, f: SignalFinding, alpha: number, minute: MinuteFigures, ship = false): DetectionRow {
  const p = Math.exp(f.logP);
  return {
    id: randomUUID(),
    kind: 'series',
    eventId: null,
    service,
    ts: new Date(t),
    score: p - alpha,
    prediction: -1,
    driftAlert: false,
    modelVersion: null,
    baseline: false,
    explanation: { summary: f.summary, features: [{ name: f.metric, value: f.value, p50: f.expected, p99: null, contribution: 1 }] },
    metadata: {
      signal: f.signal,
      severity: f.severity,
      direction: f.direction,
      since: new Date(f.since).toISOString(),
      window_minutes: f.windowMinutes,
      ratio: f.ratio,
      log_p: f.logP,
      count: minute.count,
      errors: minute.errors,
      latency_p50: minute.p50,
      latency_p95: minute.p95,
      latency_p99: minute.p99,
      bytes: minute.bytes,
    },
    durationMs: f.signal === 'latency' ? f.value : null,
    statusCode: null,
    metric: f.metric,
    value: f.value,
    expected: f.expected,
    likelihood: 1 - p,
    ship,
  };
}
