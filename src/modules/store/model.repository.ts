import { Injectable, Logger } from '@nestjs/common';
import { PoolClient, Pool } from 'pg';
import { DataSource } from 'typeorm';
import { gunzipSync, gzipSync } from 'zlib';

export type ModelStatus = 'active' | 'inactive' | 'rejected';

export interface ModelVersionRow {
  tenantId: string;
  version: number;
  status: ModelStatus;
  source: string;
  rows: number;
  timeFrom: Date | null;
  timeTo: Date | null;
  params: Record<string, unknown>;
  stats: Record<string, unknown>;
  createdAt: Date;
  activatedAt: Date | null;
}

export interface NewModelVersion {
  source: string;
  rows: number;
  timeFrom: Date | null;
  timeTo: Date | null;
  params: Record<string, unknown>;
  stats: Record<string, unknown>;
  /** The serialised model; stored gzipped. */
  artifact: unknown;
  status: ModelStatus;
}

const CHANNEL = 'anomaly_detector_model_activated';
const COLUMNS = `tenant_id, version, status, source, rows, time_from, time_to, params, stats, created_at, activated_at`;

function toRow(r: Record<string, unknown>): ModelVersionRow {
  return {
    tenantId: r.tenant_id as string,
    version: r.version as number,
    status: r.status as ModelStatus,
    source: r.source as string,
    rows: r.rows as number,
    timeFrom: (r.time_from as Date) ?? null,
    timeTo: (r.time_to as Date) ?? null,
    params: r.params as Record<string, unknown>,
    stats: r.stats as Record<string, unknown>,
    createdAt: r.created_at as Date,
    activatedAt: (r.activated_at as Date) ?? null,
  };
}

/** Model versions per tenant: one version sequence per tenant, at most one active. */
@Injectable()
export class ModelRepository {
  private readonly logger = new Logger(ModelRepository.name);

  constructor(private readonly dataSource: DataSource) {}

  /**
   * Stores a new version (numbered after the tenant's last) and, when its status is active,
   * makes it the only active one, in one transaction; replicas are told through NOTIFY.
   */
  async insert(tenantId: string, v: NewModelVersion): Promise<number> {
    return this.dataSource.transaction(async (m) => {
      // Serialises version numbering per tenant.
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`models:${tenantId}`]);
      const [{ next }] = await m.query(`SELECT COALESCE(MAX(version), 0) + 1 AS next FROM models WHERE tenant_id = $1`, [tenantId]);
      if (v.status === 'active') {
        await m.query(`UPDATE models SET status = 'inactive' WHERE tenant_id = $1 AND status = 'active'`, [tenantId]);
      }
      await m.query(
        `INSERT INTO models (tenant_id, version, status, source, rows, time_from, time_to, params, stats, artifact, activated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $3 = 'active' THEN now() END)`,
        [tenantId, next, v.status, v.source, v.rows, v.timeFrom, v.timeTo, v.params, v.stats, gzipSync(JSON.stringify(v.artifact))],
      );
      if (v.status === 'active') await m.query(`SELECT pg_notify($1, $2)`, [CHANNEL, tenantId]);
      return Number(next);
    });
  }

  /** Makes `version` the tenant's only active version. False when the version does not exist or was rejected. */
  async activate(tenantId: string, version: number): Promise<boolean> {
    return this.dataSource.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`models:${tenantId}`]);
      const found = await m.query(`SELECT status FROM models WHERE tenant_id = $1 AND version = $2`, [tenantId, version]);
      if (!found.length || found[0].status === 'rejected') return false;
      await m.query(`UPDATE models SET status = 'inactive' WHERE tenant_id = $1 AND status = 'active' AND version <> $2`, [tenantId, version]);
      await m.query(`UPDATE models SET status = 'active', activated_at = now() WHERE tenant_id = $1 AND version = $2`, [tenantId, version]);
      await m.query(`SELECT pg_notify($1, $2)`, [CHANNEL, tenantId]);
      return true;
    });
  }

  async list(tenantId: string, limit = 100, beforeVersion?: number): Promise<ModelVersionRow[]> {
    const rows = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM models WHERE tenant_id = $1 AND ($2::int IS NULL OR version < $2)
       ORDER BY version DESC LIMIT $3`,
      [tenantId, beforeVersion ?? null, limit],
    );
    return rows.map(toRow);
  }

  async findOne(tenantId: string, version: number): Promise<ModelVersionRow | null> {
    const rows = await this.dataSource.query(`SELECT ${COLUMNS} FROM models WHERE tenant_id = $1 AND version = $2`, [tenantId, version]);
    return rows.length ? toRow(rows[0]) : null;
  }

  /** The active version number, cheap enough to poll. */
  async activeVersion(tenantId: string): Promise<number | null> {
    const rows = await this.dataSource.query(`SELECT version FROM models WHERE tenant_id = $1 AND status = 'active'`, [tenantId]);
    return rows.length ? Number(rows[0].version) : null;
  }

  /** The active version with its artifact. */
  async findActiveWithArtifact(tenantId: string): Promise<{ row: ModelVersionRow; artifact: unknown } | null> {
    const rows = await this.dataSource.query(`SELECT ${COLUMNS}, artifact FROM models WHERE tenant_id = $1 AND status = 'active'`, [tenantId]);
    if (!rows.length) return null;
    return { row: toRow(rows[0]), artifact: JSON.parse(gunzipSync(rows[0].artifact as Buffer).toString('utf8')) };
  }

  /** When the tenant's newest version was registered (its last training, active or rejected), or null. */
  async lastRegisteredAt(tenantId: string): Promise<Date | null> {
    const rows = await this.dataSource.query(`SELECT MAX(created_at) AS at FROM models WHERE tenant_id = $1`, [tenantId]);
    return rows[0]?.at ?? null;
  }

  async countForTenant(tenantId: string): Promise<number> {
    const [{ n }] = await this.dataSource.query(`SELECT COUNT(*)::int AS n FROM models WHERE tenant_id = $1`, [tenantId]);
    return n;
  }

  /**
   * Calls `onActivated(tenantId)` whenever any replica activates a model, over a dedicated
   * LISTEN connection that reconnects by itself; `onActivated('*')` when that connection drops
   * and again when it is back (notifications in between are lost). Returns a function that stops
   * listening.
   */
  subscribeActivations(onActivated: (tenantId: string) => void): () => Promise<void> {
    const pool = (this.dataSource.driver as unknown as { master: Pool }).master;
    let client: PoolClient | undefined;
    let stopped = false;
    let listenedBefore = false;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (delay: number) => {
      if (stopped) return;
      let c: PoolClient | undefined;
      try {
        c = await pool.connect();
        const mine = c;
        mine.on('notification', (msg) => msg.payload && onActivated(msg.payload));
        mine.on('error', () => {
          if (client !== mine) return; // already released (stopping) or replaced
          client = undefined;
          mine.release(true);
          if (stopped) return;
          // Notifications were missed while the connection was down: re-check every tenant.
          onActivated('*');
          retry = setTimeout(() => void connect(1000), 1000);
          retry.unref();
        });
        await mine.query(`LISTEN ${CHANNEL}`);
        if (stopped) {
          mine.release();
          return;
        }
        client = mine;
        // Back after a drop (e.g. a database outage): activations made meanwhile were never
        // notified here, so every cached model is re-checked now rather than at the 30 s re-check.
        if (listenedBefore) onActivated('*');
        listenedBefore = true;
      } catch (e) {
        if (c && client !== c) c.release(true);
        if (stopped) return;
        this.logger.warn(`cannot listen for model activations (${(e as Error).message}); retrying`);
        retry = setTimeout(() => void connect(Math.min(delay * 2, 30_000)), delay);
        retry.unref();
      }
    };
    void connect(1000);
    return async () => {
      stopped = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      if (c) {
        await c.query(`UNLISTEN ${CHANNEL}`).catch(() => undefined);
        c.release();
      }
    };
  }
}
