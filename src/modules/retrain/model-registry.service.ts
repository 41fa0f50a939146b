import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { existsSync, readFileSync } from 'fs';
import { join, resolve } from 'path';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { Gauge } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { writeFileAtomic } from '../../common/atomic-write';
import { AnomalyModel } from '../detection/model/anomaly-model';
import { ModelRepository, ModelStatus, ModelVersionRow } from '../store/model.repository';
import { TenantRegistry } from '../tenancy/tenant-registry.service';
import { MODEL_ACTIVE_VERSION, MODEL_TRAINED_AT } from './retrain.metrics';

export interface ActiveModel {
  version: number;
  model: AnomalyModel;
  trainedAt: Date;
  /** When this version last became active (its anomalies and drift count from then). */
  activatedAt: Date;
}

/** What a challenger's validation decided, stored with the version (see model-validation.ts). */
export interface RegisterOptions {
  /** Store it without activating it. */
  activate?: boolean;
  /** Figures stored in `stats.validation`. */
  validation?: Record<string, unknown>;
  /** Set: the version is stored as rejected, with this reason. */
  rejectedReason?: string;
  /** More figures for its stats (e.g. `training`: what the training data left out). */
  stats?: Record<string, unknown>;
}

export interface RegisteredModel {
  version: number;
  status: ModelStatus;
  stats: Record<string, unknown>;
}

interface CacheEntry {
  active: ActiveModel | null;
  checkedAt: number;
}

/** How long a cached active model is trusted without asking the database (NOTIFY usually beats it). */
const RECHECK_MS = 30_000;

/**
 * The tenant model registry: versions with their training stats, one active version per tenant,
 * and the active model kept in memory. Every replica drops its cached model when any replica
 * activates another version (PostgreSQL NOTIFY), and re-checks the active version every 30 s in
 * case a notification was missed.
 */
@Injectable()
export class ModelRegistryService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ModelRegistryService.name);
  private readonly cache = new Map<string, CacheEntry>();
  private readonly loading = new Map<string, Promise<ActiveModel | null>>();
  private unsubscribe?: () => Promise<void>;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly repository: ModelRepository,
    private readonly tenants: TenantRegistry,
    @InjectMetric(MODEL_ACTIVE_VERSION) private readonly versionGauge: Gauge<string>,
    @InjectMetric(MODEL_TRAINED_AT) private readonly trainedAtGauge: Gauge<string>,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.unsubscribe = this.repository.subscribeActivations((tenant) => {
      if (tenant === '*') this.cache.clear();
      else this.cache.delete(tenant);
    });
    await this.importModelFiles();
    // The active version of each tenant in /prom from the start (the model itself loads on first use).
    for (const tenant of this.tenants.list()) {
      const version = await this.repository.activeVersion(tenant).catch(() => null);
      if (version !== null) this.versionGauge.set({ tenant }, version);
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.unsubscribe?.();
  }

  /**
   * Registers a trained model as the tenant's next version. It becomes active unless `activate` is
   * false (inactive), or it is rejected: trained on fewer than MODEL_MIN_TRAINING_ROWS events, or
   * given a `rejectedReason` by its validation. The reason and validation figures go in its stats.
   */
  async register(tenantId: string, model: AnomalyModel, source: string, options: RegisterOptions = {}): Promise<RegisteredModel> {
    const enough = model.rows >= this.config.modelMinTrainingRows;
    const rejectedReason = !enough ? `fewer than ${this.config.modelMinTrainingRows} training events` : options.rejectedReason;
    const status: ModelStatus = rejectedReason ? 'rejected' : options.activate === false ? 'inactive' : 'active';
    const stats = {
      ...model.stats(),
      ...options.stats,
      ...(options.validation ? { validation: options.validation } : {}),
      ...(rejectedReason ? { rejectedReason } : {}),
    };
    const version = await this.repository.insert(tenantId, {
      source,
      rows: model.rows,
      timeFrom: model.timeFrom,
      timeTo: model.timeTo,
      params: { ...model.params },
      stats,
      artifact: model.toJSON(),
      status,
    });
    if (status === 'active') this.cache.delete(tenantId);
    return { version, status, stats };
  }

  /** Activates a stored version (rollback). False when it does not exist or was rejected. */
  async activate(tenantId: string, version: number): Promise<boolean> {
    const ok = await this.repository.activate(tenantId, version);
    if (ok) this.cache.delete(tenantId);
    return ok;
  }

  find(tenantId: string, version: number): Promise<ModelVersionRow | null> {
    return this.repository.findOne(tenantId, version);
  }

  list(tenantId: string, limit?: number, beforeVersion?: number): Promise<ModelVersionRow[]> {
    return this.repository.list(tenantId, limit, beforeVersion);
  }

  /** When the tenant last trained a version (active or rejected), or null. */
  lastRegisteredAt(tenantId: string): Promise<Date | null> {
    return this.repository.lastRegisteredAt(tenantId);
  }

  /** The tenant's active model, from memory when fresh. */
  async active(tenantId: string): Promise<ActiveModel | null> {
    const entry = this.cache.get(tenantId);
    if (entry && Date.now() - entry.checkedAt < RECHECK_MS) return entry.active;
    if (entry) {
      // Cheap check: same version still active → keep the parsed model.
      const version = await this.repository.activeVersion(tenantId);
      if (version === (entry.active?.version ?? null)) {
        entry.checkedAt = Date.now();
        return entry.active;
      }
    }
    let pending = this.loading.get(tenantId);
    if (!pending) {
      pending = this.load(tenantId).finally(() => this.loading.delete(tenantId));
      this.loading.set(tenantId, pending);
    }
    return pending;
  }

  private async load(tenantId: string): Promise<ActiveModel | null> {
    const found = await this.repository.findActiveWithArtifact(tenantId);
    let active: ActiveModel | null = null;
    if (found) {
      try {
        active = {
          version: found.row.version,
          model: AnomalyModel.fromJSON(found.artifact),
          trainedAt: found.row.createdAt,
          activatedAt: found.row.activatedAt ?? found.row.createdAt,
        };
      } catch (e) {
        // An unreadable model (e.g. from an incompatible build) must not stop ingestion: events
        // fall back to the cold-start baselines until a readable version is activated.
        this.logger.error(`active model v${found.row.version} of tenant ${tenantId} cannot be loaded: ${(e as Error).message}`);
      }
    }
    this.cache.set(tenantId, { active, checkedAt: Date.now() });
    if (active) {
      this.versionGauge.set({ tenant: tenantId }, active.version);
      this.trainedAtGauge.set({ tenant: tenantId }, active.trainedAt.getTime() / 1000);
    } else {
      this.versionGauge.remove({ tenant: tenantId });
      this.trainedAtGauge.remove({ tenant: tenantId });
    }
    return active;
  }

  modelFilePath(tenantId: string): string {
    return resolve(this.config.modelsDir, tenantId, 'model.json');
  }

  /** Writes the model file atomically (temp file, fsync, rename). */
  writeModelFile(tenantId: string, model: AnomalyModel): string {
    const path = this.modelFilePath(tenantId);
    writeFileAtomic(path, JSON.stringify(model.toJSON()));
    return path;
  }

  /**
   * Imports models/<tenant>/model.json for every tenant that has no model yet (e.g. a model trained
   * during the image build). A bad file is logged and skipped; it never stops start-up.
   */
  async importModelFiles(): Promise<string[]> {
    const imported: string[] = [];
    for (const tenant of this.tenants.list()) {
      const path = join(this.config.modelsDir, tenant, 'model.json');
      if (!existsSync(path)) continue;
      try {
        if ((await this.repository.countForTenant(tenant)) > 0) continue;
        const model = AnomalyModel.fromJSON(JSON.parse(readFileSync(path, 'utf8')));
        const { version, status } = await this.register(tenant, model, 'file');
        this.logger.log(`imported ${path} as version ${version} of tenant ${tenant} (${status})`);
        imported.push(tenant);
      } catch (e) {
        this.logger.error(`cannot import ${path}: ${(e as Error).message}`);
      }
    }
    return imported;
  }
}
