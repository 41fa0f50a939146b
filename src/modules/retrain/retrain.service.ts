import { Inject, Injectable, Logger } from '@nestjs/common';
import { existsSync } from 'fs';
import { join } from 'path';
import { AppConfig } from '../../config/app-config';
import { writeFileAtomic } from '../../common/atomic-write';
import { DetectionService } from '../detection/detection.service';
import { LogEvent, parseLogEvent } from '../detection/features/log-event';
import { LokiClient } from '../ingestion/loki/loki.client';
import { DetectionRepository } from '../store/detection.repository';
import { EventRepository } from '../store/event.repository';
import { RetrainStateRepository } from '../store/retrain-state.repository';
import { ModelRegistryService } from './model-registry.service';
import { RetrainException } from './retrain.exception';
import { readTrainingDataset } from './training-dataset';
import { TrainingService } from './training.service';

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

/**
 * The retrain policy of SPEC §8: when to retrain (interval, accumulated anomalies not marked false
 * positive, drift), from which data (Loki, else stored events, else TRAINING_DATASET_PATH; events
 * behind confirmed anomalies left out), and the per-tenant state that records it. A tenant's
 * retraining holds a PostgreSQL advisory lock, so one replica at a time runs it.
 */
@Injectable()
export class RetrainService {
  private readonly logger = new Logger(RetrainService.name);

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly training: TrainingService,
    private readonly registry: ModelRegistryService,
    private readonly detection: DetectionService,
    private readonly loki: LokiClient,
    private readonly state: RetrainStateRepository,
    private readonly events: EventRepository,
    private readonly detections: DetectionRepository,
  ) {}

  /** Why the tenant should retrain now, or null. */
  async due(tenantId: string, now = new Date()): Promise<RetrainReason | null> {
    const [state, active] = await Promise.all([this.state.get(tenantId), this.registry.active(tenantId)]);
    if (state.lastErrorAt && now.getTime() - state.lastErrorAt.getTime() < this.config.retrainRetryMinutes * 60_000) {
      if (!state.lastTrainedAt || state.lastErrorAt > state.lastTrainedAt) return null; // let a failure cool down
    }
    const last = [state.lastTrainedAt, active?.trainedAt].filter((d): d is Date => d instanceof Date).sort((a, b) => b.getTime() - a.getTime())[0];
    if (!last || now.getTime() - last.getTime() >= this.config.retrainIntervalHours * 3_600_000) return 'interval';
    if ((await this.detections.countSince(tenantId, last)) >= this.config.retrainAnomalyThreshold) return 'anomalies';
    if (active && (await this.detection.summary(tenantId)).drift.drift_alert) return 'drift';
    return null;
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
      const { events, source } = await this.trainingData(tenantId, started);
      const result = await this.training.train(tenantId, events, source);
      if (result.status === 'active') {
        await this.state.recordTraining(tenantId, started, result.version, reason, source);
        this.registry.writeModelFile(tenantId, result.model);
      } else {
        await this.state.recordError(tenantId, `version ${result.version} rejected: ${String(result.stats.rejectedReason ?? result.status)}`);
      }
      this.writeStateFile(tenantId);
      this.logger.log(`tenant ${tenantId}: retrained (${reason}) on ${events.length} events from ${source} → v${result.version} ${result.status}`);
      return { version: result.version, status: result.status, source, reason, stats: result.stats };
    } catch (e) {
      await this.state.recordError(tenantId, (e as Error).message).catch(() => undefined);
      this.writeStateFile(tenantId);
      throw e;
    }
  }

  /** Training events in the order of SPEC §8: Loki, else stored events, else the dataset file. */
  async trainingData(tenantId: string, now: Date): Promise<{ events: LogEvent[]; source: TrainingSource }> {
    const confirmed = await this.detections.confirmedEventIds(tenantId);
    const min = this.config.modelMinTrainingRows;
    const since = new Date(now.getTime() - this.config.retrainLookbackMinutes * 60_000);
    const tried: string[] = [];
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
        if (events.length >= min) return { events, source: 'loki' };
        tried.push(`Loki returned ${events.length} events`);
      } catch (e) {
        this.logger.warn(`tenant ${tenantId}: training data from Loki unavailable (${(e as Error).message}); using stored events`);
        tried.push(`Loki failed: ${(e as Error).message}`);
      }
    }
    const stored = await this.events.trainingEvents(tenantId, since, MAX_TRAINING_ROWS);
    if (stored.length >= min) {
      return { source: 'events', events: stored };
    }
    tried.push(`${stored.length} stored events in the last ${this.config.retrainLookbackMinutes} min`);
    if (existsSync(this.config.trainingDatasetPath)) {
      const dataset = await readTrainingDataset(this.config.trainingDatasetPath, this.config.defaultTenant, this.config.ingestMaxMetadataBytes);
      const mine = dataset.byTenant.get(tenantId)?.events ?? [];
      if (mine.length) return { events: mine, source: 'dataset' };
      tried.push(`no events of this tenant in ${this.config.trainingDatasetPath}`);
    } else {
      tried.push(`${this.config.trainingDatasetPath} does not exist`);
    }
    throw RetrainException.noData(tried.join('; '));
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
