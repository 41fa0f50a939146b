import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { DDSketch } from '@datadog/sketches-js';
import { randomUUID } from 'crypto';
import { Counter } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { PeriodicJob } from '../../common/periodic-job';
import { DetectionRow } from '../store/event.repository';
import { ClosedMinute, PartialRow, SeriesGap, SeriesRepository, SeriesStateRow, Watermark } from '../store/series.repository';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import { AnomalyBus } from './anomaly-bus';
import { ANOMALIES } from './detection.metrics';
import { MinuteSignals, MinuteStats, SignalFinding, SignalOptions } from './series/minute-signals';

const MINUTE = 60_000;
/**
 * Silent minutes fed one by one before the rest of the silence is recorded as a gap instead: long
 * enough for a dead service to stay an incident for hours, short enough that a backfill of an old
 * day or a service retired for good costs a bounded amount of work.
 */
export const MAX_EMPTY_RUN = 240;


interface MinutePoint {
  count: number;
  errors: number;
  latencies: number[];
  anomalies: number;
  bytesN: number;
  bytesLogSum: number;
  bytesLogSq: number;
  bytesMax: number;
  bytesMin: number;
}

const emptyPoint = (): MinutePoint => ({ count: 0, errors: 0, latencies: [], anomalies: 0, bytesN: 0, bytesLogSum: 0, bytesLogSq: 0, bytesMax: -Infinity, bytesMin: Infinity });

/**
 * Series detection in event time (SPEC §7, issue 12). Events are summed per tenant, service and
 * minute as they are stored (count, server errors, latencies, response sizes, per-event anomalies).
 * A minute closes once the tenant's event-time watermark — the newest event time seen minus
 * SERIES_GRACE_SECONDS — has passed its end, the way stream processors handle lateness; the wall
 * clock moves the watermark on only for a tenant whose event time has stood still for
 * SERIES_IDLE_SECONDS, so a tenant that stops sending is still noticed. A backfill, a catch-up and
 * live traffic therefore close the same minutes with the same contents and give the same
 * detections. Each closed minute is fed to the service's MinuteSignals (traffic judged as a count,
 * errors given the minute's requests, latency and response size on a log scale, per-event anomalies
 * against the model's rate); a finding becomes a detection (`kind: "series"`) that alerting turns into
 * an incident. Silences longer than MAX_EMPTY_RUN minutes are recorded as gaps, not walked.
 */
@Injectable()
export class SeriesService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SeriesService.name);
  private job?: PeriodicJob;
  private readonly signalOptions: SignalOptions;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly tenants: TenantRegistry,
    private readonly series: SeriesRepository,
    private readonly bus: AnomalyBus,
    @InjectMetric(ANOMALIES) private readonly anomalies: Counter<string>,
  ) {
    const direction = config.alertDirection;
    this.signalOptions = {
      alpha: config.seriesAlpha,
      latency: direction === 'slower' ? 'up' : direction === 'faster' ? 'down' : 'both',
      contamination: typeof config.modelContamination === 'number' ? config.modelContamination : 0.01,
    };
  }

  onApplicationBootstrap(): void {
    this.job = new PeriodicJob(this.config.seriesCloseIntervalSeconds * 1000, () => this.closeAll()).start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.job?.stop();
  }

  /** Closes due minutes of every tenant; one tenant's failure never stops the others. */
  async closeAll(now = Date.now()): Promise<void> {
    for (const tenant of this.tenants.list()) {
      try {
        await this.closeTenant(tenant, now);
        await this.series.pruneMinutesBefore(tenant, new Date(now - this.config.eventRetentionHours * 3_600_000));
      } catch (e) {
        this.logger.error(`closing series minutes of tenant ${tenant} failed: ${(e as Error).message}`);
      }
    }
  }

  /** The tenant's event-time watermark as the series job sees it at `now` (wall clock, epoch ms). */
  watermark(tenantId: string, now = Date.now()): Promise<Watermark> {
    return this.series.watermark(tenantId, this.watermarkSettings(now));
  }

  /**
   * Closes the tenant's minutes that end before its event-time watermark; returns the series
   * detections made. `now` (wall clock) only matters for a tenant gone quiet.
   */
  async closeTenant(tenantId: string, now = Date.now()): Promise<DetectionRow[]> {
    const result = await this.series.close(tenantId, this.watermarkSettings(now), (states, partials, horizon) =>
      this.compute(tenantId, horizon, states, partials),
    );
    if (!result) return [];
    if (result.detections.length) this.anomalies.inc({ tenant: tenantId, kind: 'series', scorer: 'series' }, result.detections.length);
    for (const g of result.gaps) this.logger.log(`tenant ${tenantId}, service ${g.service}: no events from ${g.from.toISOString()} to ${g.to.toISOString()} (recorded as a gap)`);
    this.bus.publish(tenantId, result.detections);
    return result.detections;
  }

  private watermarkSettings(now: number) {
    return { now, graceMs: this.config.seriesGraceSeconds * 1000, idleMs: this.config.seriesIdleSeconds * 1000 };
  }

  private async compute(tenantId: string, horizon: number, states: SeriesStateRow[], partials: PartialRow[]) {
    let slice = performance.now();
    // A backlog (a backfill, a restart after downtime) is long work: give requests the event loop every few ms.
    const yieldNow = async () => {
      if (performance.now() - slice < 8) return;
      await new Promise((r) => setImmediate(r));
      slice = performance.now();
    };
    const byService = new Map<string, Map<number, MinutePoint>>();
    for (const p of partials) {
      const minutes = byService.get(p.service) ?? new Map<number, MinutePoint>();
      const t = p.minute.getTime();
      const point = minutes.get(t) ?? emptyPoint();
      point.count += p.count;
      point.errors += p.errors;
      for (const l of p.latencies) point.latencies.push(l);
      point.anomalies += p.anomalies;
      point.bytesN += p.bytesN;
      point.bytesLogSum += p.bytesLogSum;
      point.bytesLogSq += p.bytesLogSq;
      if (p.bytesLogMax !== null) point.bytesMax = Math.max(point.bytesMax, p.bytesLogMax);
      if (p.bytesLogMin !== null) point.bytesMin = Math.min(point.bytesMin, p.bytesLogMin);
      minutes.set(t, point);
      byService.set(p.service, minutes);
    }
    const stateOf = new Map(states.map((s) => [s.service, s]));
    const services = new Set([...stateOf.keys(), ...byService.keys()]);
    const minutes: ClosedMinute[] = [];
    const newStates: SeriesStateRow[] = [];
    const detections: DetectionRow[] = [];
    const gaps: SeriesGap[] = [];

    for (const service of services) {
      const points = byService.get(service) ?? new Map<number, MinutePoint>();
      const dataMinutes = [...points.keys()].sort((a, b) => a - b);
      const state = stateOf.get(service);
      // A service's series starts at its first event, not at some earlier time of the tenant.
      const start = state ? state.lastMinute.getTime() + MINUTE : (dataMinutes[0] ?? Infinity);
      // Minutes that closed before these events arrived: merge the counts, do not re-score the past.
      for (const t of dataMinutes) if (t < start) minutes.push(this.closed(service, t, points.get(t)!, true));
      // Nothing new to close (most ticks: they run more often than minutes end): state unchanged.
      if (!Number.isFinite(start) || start >= horizon) continue;
      const signals = this.signalsFor(service, state);
      let next = dataMinutes.findIndex((t) => t >= start);
      for (let t = start; t < horizon; ) {
        await yieldNow();
        while (next >= 0 && next < dataMinutes.length && dataMinutes[next] < t) next++;
        const p = points.get(t) ?? emptyPoint();
        if (p.count === 0 && signals.emptyRun >= MAX_EMPTY_RUN) {
          // A long silence: record it as one gap up to the next minute with events (or the horizon).
          const to = next >= 0 && next < dataMinutes.length ? dataMinutes[next] : horizon;
          gaps.push({ service, from: new Date(signals.openGap(t)), to: new Date(to) });
          t = to;
          continue;
        }
        const closed = this.closed(service, t, p, false);
        minutes.push(closed);
        for (const f of signals.update(t, statsOf(p))) detections.push(this.detection(service, t, f, closed));
        t += MINUTE;
      }
      newStates.push({ service, lastMinute: new Date(horizon - MINUTE), detectors: signals.toJSON() as unknown as Record<string, unknown> });
    }
    return { minutes, states: newStates, detections, gaps };
  }

  /** The service's signal tests as of its stored state, or new ones (first minute, or a state of an older format). */
  private signalsFor(service: string, state: SeriesStateRow | undefined): MinuteSignals {
    if (state?.detectors) {
      try {
        return MinuteSignals.fromJSON(state.detectors, this.signalOptions);
      } catch (e) {
        // An older build's state (or an unreadable one) must not block the tenant's series: start afresh.
        this.logger.warn(`series state of ${service} cannot be restored (${(e as Error).message}); starting new signal tests`);
      }
    }
    return new MinuteSignals(this.signalOptions);
  }

  private closed(service: string, t: number, p: MinutePoint, late: boolean): ClosedMinute {
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
      sketch: sketch ? Buffer.from(sketch.toProto()) : null,
      late,
    };
  }

  private detection(service: string, t: number, f: SignalFinding, minute: ClosedMinute): DetectionRow {
    const alpha = this.signalOptions.alpha;
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
        bytes: minute.bytesGeomean,
      },
      durationMs: f.signal === 'latency' ? f.value : null,
      statusCode: null,
      metric: f.metric,
      value: f.value,
      expected: f.expected,
      likelihood: 1 - p,
      ship: Boolean(this.config.lokiPushUrl),
    };
  }
}

/** A minute's sums as the signal tests take them (latency and size on the ln(1 + x) scale). */
function statsOf(p: MinutePoint): MinuteStats {
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

