import { Inject, Injectable, Logger } from '@nestjs/common';
import { existsSync } from 'fs';
import { join } from 'path';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { Counter, Histogram } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { writeFileAtomic } from '../../common/atomic-write';
import { LogEvent, parseLogEvent } from '../detection/features/log-event';
import { LokiClient } from '../ingestion/loki/loki.client';
import { DetectionRepository } from '../store/detection.repository';
import { EventRepository } from '../store/event.repository';
import { IncidentRepository } from '../store/incident.repository';
import { RetrainStateRepository } from '../store/retrain-state.repository';
import { ModelRegistryService } from './model-registry.service';
import { anomalyBound, validateChallenger } from './model-validation';
import { RetrainException } from './retrain.exception';
import { RETRAIN_DURATION, RETRAINS } from './retrain.metrics';
import { readTrainingDataset } from './training-dataset';
import { cleanTrainingData, CleanedData, ServiceLeftOut, splitHoldout } from './training-data';
import { TrainingService } from './training.service';

const latest = (...dates: (Date | null)[]): Date | null =>
  dates.reduce<Date | null>((a, d) => (d && (!a || d > a) ? d : a), null);

export type RetrainReason = 'manual' | 'interval' | 'anomalies' | 'drift';
export type TrainingSource = 'loki' | 'events' | 'dataset';

export interface RetrainOutcome {
  version: number;
  status: 'active' | 'rejected' | 'inactive';
  source: TrainingSource;
  reason: RetrainReason;
  stats: Record<string, unknown>;
}

const MAX_TRAINING_ROWS = 200_000;

/** Share of the newest (event-time) training events held out to validate a challenger on. */
export const HOLDOUT_SHARE = 0.1;
/** Events received since activation the drift trigger needs before it judges. */
const DRIFT_MIN_EVENTS = 300;
const DRIFT_SAMPLE = 1000;
/** Newest confirmed / false-positive anomalies a challenger is checked against. */
const FEEDBACK_SAMPLE = 500;
/** Exclusion anchors read per training (the detection history limit's order of magnitude). */
const MAX_EXCLUSIONS = 20_000;

export interface TrainingData {
  events: LogEvent[];
  source: TrainingSource;
  cleaning: { candidates: number; inExclusionWindows: number; servicesLeftOut: ServiceLeftOut[] };
}

/**
 * The retrain policy of SPEC §8: when to retrain (interval; the active model's anomalies beyond what
 * its own rate explains; drift of what it scored against its training sample — the last two at most
 * once per RETRAIN_MIN_INTERVAL_MINUTES), from which data (Loki, else stored events, else
 * TRAINING_DATASET_PATH; without the traffic around incidents and confirmed anomalies, and without
 * services with too little of it), and champion/challenger validation of each retrained version
 * on the newest traffic held out of its training (model-validation.ts). A tenant's retraining holds
 * a PostgreSQL advisory lock, so one replica at a time runs it.
 */
@Injectable()
export class RetrainService {
  private readonly logger = new Logger(RetrainService.name);

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly training: TrainingService,
    private readonly registry: ModelRegistryService,
    private readonly loki: LokiClient,
    private readonly state: RetrainStateRepository,
    private readonly events: EventRepository,
    private readonly detections: DetectionRepository,
    private readonly incidents: IncidentRepository,
    @InjectMetric(RETRAINS) private readonly retrains: Counter<string>,
    @InjectMetric(RETRAIN_DURATION) private readonly duration: Histogram<string>,
  ) {}

  /**
   * Why the tenant should retrain now, or null. Without a model: as soon as stored events are
   * enough to train on (else 'interval', which tries Loki and the dataset file, and cools down
   * RETRAIN_RETRY_MINUTES after a failure). With one, nothing within RETRAIN_MIN_INTERVAL_MINUTES
   * of the last training or activation; then 'interval' after RETRAIN_INTERVAL_HOURS, 'anomalies'
   * when the active model's own anomalies (not marked false positive) exceed {@link anomalyBound}
   * of its contamination by RETRAIN_ANOMALY_THRESHOLD, 'drift' when what it scored since its
   * activation drifted from its training sample.
   */
  async due(tenantId: string, now = new Date()): Promise<RetrainReason | null> {
    const [state, active, lastRegistered] = await Promise.all([
      this.state.get(tenantId),
      this.registry.active(tenantId),
      this.registry.lastRegisteredAt(tenantId),
    ]);
    const coolingDown =
      state.lastErrorAt !== null &&
      now.getTime() - state.lastErrorAt.getTime() < this.config.retrainRetryMinutes * 60_000 &&
      (!state.lastTrainedAt || state.lastErrorAt > state.lastTrainedAt);
    const lastChange = latest(lastRegistered, active?.activatedAt ?? null);
    if (lastChange && now.getTime() - lastChange.getTime() < this.config.retrainMinIntervalMinutes * 60_000) return null;
    if (!active) {
      if (!coolingDown) return 'interval';
      // Stored events that have become enough since the last failure are tried at once, whatever the
      // cooldown. If they were enough already when it failed (training leaves out the traffic around
      // incidents, which this count does not see), the cooldown stands: not one failure a minute.
      if ((await this.storedEventsReady(tenantId, now)) && !(await this.storedEventsReady(tenantId, state.lastErrorAt!))) return 'interval';
      return null;
    }
    if (coolingDown) return null;
    const last = latest(lastChange, state.lastTrainedAt)!;
    if (now.getTime() - last.getTime() >= this.config.retrainIntervalHours * 3_600_000) return 'interval';
    const since = active.activatedAt;
    const [anomalies, scored] = await Promise.all([
      this.detections.countModelAnomaliesSince(tenantId, active.version, since),
      this.events.countScoredBy(tenantId, active.version, since),
    ]);
    if (anomalies - anomalyBound(scored, this.contamination()) >= this.config.retrainAnomalyThreshold) return 'anomalies';
    const recent = await this.events.receivedSince(tenantId, since, DRIFT_SAMPLE);
    if (recent.length >= DRIFT_MIN_EVENTS && active.model.drift(recent, this.config.driftPsiThreshold).alert) return 'drift';
    return null;
  }

  /** The anomaly share a model is expected to flag: MODEL_CONTAMINATION (1 % for `auto`). */
  private contamination(): number {
    return typeof this.config.modelContamination === 'number' ? this.config.modelContamination : 0.01;
  }

  /**
   * Whether the events stored by `asOf` (received before it, within the lookback before it) would pass
   * the per-service rules, without loading them.
   */
  private async storedEventsReady(tenantId: string, asOf: Date): Promise<boolean> {
    const coverage = await this.events.serviceCoverage(tenantId, new Date(asOf.getTime() - this.config.retrainLookbackMinutes * 60_000), asOf);
    const rows = coverage
      .filter((c) => c.rows >= this.config.retrainMinServiceEvents && c.to.getTime() - c.from.getTime() >= this.config.retrainMinServiceSpanMinutes * 60_000)
      .reduce((n, c) => n + c.rows, 0);
    return rows * (1 - HOLDOUT_SHARE) >= this.config.modelMinTrainingRows;
  }

  /** Retrains the tenant now under its lock. @throws RetrainException when another replica is at it, or without data. */
  async retrain(tenantId: string, reason: RetrainReason): Promise<RetrainOutcome> {
    const r = await this.state.withTenantLock(tenantId, 'retrain', () => this.retrainLocked(tenantId, reason));
    if (!r.ran) throw RetrainException.inProgress();
    return r.value;
  }

  private async retrainLocked(tenantId: string, reason: RetrainReason): Promise<RetrainOutcome> {
    const started = new Date();
    try {
      const data = await this.trainingData(tenantId, started);
      const { train, holdout } = splitHoldout(data.events, HOLDOUT_SHARE);
      const [confirmed, falsePositives, champion] = await Promise.all([
        this.events.withFeedback(tenantId, 'confirmed', FEEDBACK_SAMPLE),
        this.events.withFeedback(tenantId, 'false_positive', FEEDBACK_SAMPLE),
        this.registry.active(tenantId),
      ]);
      const result = await this.training.train(
        tenantId,
        train,
        data.source,
        undefined,
        (model) => validateChallenger(model, champion, { holdout, confirmed, falsePositives }, this.contamination()),
        { training: { ...data.cleaning, holdout: holdout.length } },
      );
      const stats = result.stats;
      if (result.status === 'active') {
        await this.state.recordTraining(tenantId, started, result.version, reason, data.source);
        this.registry.writeModelFile(tenantId, result.model);
      } else {
        await this.state.recordError(tenantId, `version ${result.version} rejected: ${String(result.stats.rejectedReason ?? result.status)}`);
      }
      this.writeStateFile(tenantId);
      this.logger.log(
        `tenant ${tenantId}: retrained (${reason}) on ${train.length} events from ${data.source} → v${result.version} ${result.status}` +
          (result.stats.rejectedReason ? ` (${String(result.stats.rejectedReason)})` : ''),
      );
      this.retrains.inc({ tenant: tenantId, reason, result: result.status });
      this.duration.observe({ tenant: tenantId }, (Date.now() - started.getTime()) / 1000);
      return { version: result.version, status: result.status, source: data.source, reason, stats };
    } catch (e) {
      this.retrains.inc({ tenant: tenantId, reason, result: 'failed' });
      await this.state.recordError(tenantId, (e as Error).message).catch(() => undefined);
      this.writeStateFile(tenantId);
      throw e;
    }
  }

  /**
   * Training events in the order of SPEC §8 — Loki, else stored events, else the dataset file —
   * the first with MODEL_MIN_TRAINING_ROWS events once cleaned: confirmed anomalies and the traffic
   * within RETRAIN_EXCLUSION_MARGIN_MINUTES of an incident or confirmed anomaly of its service left
   * out, and services with fewer than RETRAIN_MIN_SERVICE_EVENTS events or less than
   * RETRAIN_MIN_SERVICE_SPAN_MINUTES of event time.
   * @throws RetrainException (NO_TRAINING_DATA) naming what each source had.
   */
  async trainingData(tenantId: string, now: Date): Promise<TrainingData> {
    const confirmed = await this.detections.confirmedEventIds(tenantId);
    const min = this.config.modelMinTrainingRows;
    const since = new Date(now.getTime() - this.config.retrainLookbackMinutes * 60_000);
    const tried: string[] = [];
    const attempt = async (source: TrainingSource, candidates: LogEvent[], what: string): Promise<TrainingData | null> => {
      const cleaned = await this.clean(tenantId, candidates);
      const cleaning = { candidates: candidates.length, inExclusionWindows: cleaned.inExclusionWindows, servicesLeftOut: cleaned.servicesLeftOut };
      if (cleaned.events.length >= min) return { events: cleaned.events, source, cleaning };
      const left = cleaned.servicesLeftOut.map((s) => `${s.service}: ${s.reason}, ${s.rows} events over ${s.spanMinutes} min`).join(', ');
      tried.push(`${what}: ${candidates.length} events, ${cleaned.events.length} usable${left ? ` (left out ${left})` : ''}`);
      return null;
    };
    if (this.loki.queryBase) {
      try {
        const query = this.config.lokiTrainingQuery.replaceAll('{tenant}', tenantId);
        const entries = await this.loki.queryRange(tenantId, query, BigInt(since.getTime()) * 1_000_000n, BigInt(now.getTime()) * 1_000_000n);
        const events: LogEvent[] = [];
        for (const e of entries.slice(-MAX_TRAINING_ROWS)) {
          let item: unknown;
          try {
            item = JSON.parse(e.line);
          } catch {
            continue;
          }
          if (typeof item !== 'object' || item === null) continue;
          const obj = item as Record<string, unknown>;
          if (obj.service === undefined && e.labels.service) obj.service = e.labels.service;
          if (obj.timestamp === undefined) obj.timestamp = new Date(Number(e.tsNs / 1_000_000n)).toISOString();
          const parsed = parseLogEvent(obj, { maxMetadataBytes: this.config.ingestMaxMetadataBytes });
          if (parsed.ok && !(parsed.event.id && confirmed.has(parsed.event.id))) events.push(parsed.event);
        }
        const r = await attempt('loki', events, 'Loki');
        if (r) return r;
      } catch (e) {
        this.logger.warn(`tenant ${tenantId}: training data from Loki unavailable (${(e as Error).message}); using stored events`);
        tried.push(`Loki failed: ${(e as Error).message}`);
      }
    }
    const stored = await this.events.trainingEvents(tenantId, since, MAX_TRAINING_ROWS);
    const fromEvents = await attempt('events', stored, `stored events of the last ${this.config.retrainLookbackMinutes} min`);
    if (fromEvents) return fromEvents;
    if (existsSync(this.config.trainingDatasetPath)) {
      const dataset = await readTrainingDataset(this.config.trainingDatasetPath, this.config.defaultTenant, this.config.ingestMaxMetadataBytes);
      const mine = dataset.byTenant.get(tenantId)?.events ?? [];
      const fromDataset = mine.length ? await attempt('dataset', mine, this.config.trainingDatasetPath) : null;
      if (fromDataset) return fromDataset;
      if (!mine.length) tried.push(`no events of this tenant in ${this.config.trainingDatasetPath}`);
    } else {
      tried.push(`${this.config.trainingDatasetPath} does not exist`);
    }
    throw RetrainException.noData(tried.join('; '));
  }

  /** {@link cleanTrainingData} with the tenant's exclusion windows around the candidates' time range. */
  private async clean(tenantId: string, events: LogEvent[]): Promise<CleanedData> {
    let lo = Infinity;
    let hi = -Infinity;
    for (const e of events) {
      lo = Math.min(lo, e.timestamp.getTime());
      hi = Math.max(hi, e.timestamp.getTime());
    }
    const margin = this.config.retrainExclusionMarginMinutes * 60_000;
    if (!events.length) return cleanTrainingData(events, [], { minServiceEvents: 0, minServiceSpanMs: 0 });
    const [from, to] = [new Date(lo - margin), new Date(hi + margin)];
    const [anchors, incidents] = await Promise.all([
      this.detections.trainingExclusions(tenantId, from, to, MAX_EXCLUSIONS),
      this.incidents.timeWindows(tenantId, from, to, MAX_EXCLUSIONS),
    ]);
    const windows = [
      ...anchors.map((a) => ({ service: a.service, from: a.ts.getTime() - margin, to: a.ts.getTime() + margin })),
      ...incidents.map((w) => ({ service: w.service, from: w.from.getTime() - margin, to: w.to.getTime() + margin })),
    ];
    return cleanTrainingData(events, windows, {
      minServiceEvents: this.config.retrainMinServiceEvents,
      minServiceSpanMs: this.config.retrainMinServiceSpanMinutes * 60_000,
    });
  }

  /** models/<tenant>/retrain_state.json, written atomically (an operator-readable copy of the state). */
  private writeStateFile(tenantId: string): void {
    void this.state
      .get(tenantId)
      .then((s) =>
        writeFileAtomic(
          join(this.config.modelsDir, tenantId, 'retrain_state.json'),
          JSON.stringify({ ...s, lokiCursorNs: s.lokiCursorNs?.toString() ?? null }, null, 2),
        ),
      )
      .catch((e) => this.logger.warn(`cannot write retrain_state.json of ${tenantId}: ${(e as Error).message}`));
  }
}
