import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** A silence: no alert messages for a service (or '*', every service) of a tenant until it expires. */
export interface SilenceRow {
  id: string;
  seq: number;
  service: string;
  reason: string | null;
  startsAt: Date;
  expiresAt: Date;
  endedAt: Date | null;
  createdAt: Date;
  /** Computed by the database clock when read. */
  active: boolean;
}

export interface NewSilence {
  id: string;
  service: string;
  reason: string | null;
  startsAt: Date | null;
  expiresAt: Date;
}

const ACTIVE = `(ended_at IS NULL AND starts_at <= now() AND expires_at > now())`;

function toRow(r: Record<string, unknown>): SilenceRow {
  return {
    id: r.id as string,
    seq: Number(r.seq),
    service: r.service as string,
    reason: (r.reason as string) ?? null,
    startsAt: r.starts_at as Date,
    expiresAt: r.expires_at as Date,
    endedAt: (r.ended_at as Date) ?? null,
    createdAt: r.created_at as Date,
    active: Boolean(r.active),
  };
}

/** Silences per tenant. */
@Injectable()
export class SilenceRepository {
  constructor(private readonly dataSource: DataSource) {}

  async insert(tenantId: string, s: NewSilence): Promise<SilenceRow> {
    const [row] = await this.dataSource.query(
      `INSERT INTO silences (tenant_id, id, service, reason, starts_at, expires_at)
       VALUES ($1, $2, $3, $4, COALESCE($5, now()), $6)
       RETURNING *, ${ACTIVE} AS active`,
      [tenantId, s.id, s.service, s.reason, s.startsAt, s.expiresAt],
    );
    return toRow(row);
  }

  /** Newest first; `activeOnly` keeps those in force now. */
  async list(
    tenantId: string,
    filter: { service?: string; activeOnly?: boolean },
    limit: number,
    afterSeq?: number,
  ): Promise<SilenceRow[]> {
    const rows = await this.dataSource.query(
      `SELECT *, ${ACTIVE} AS active FROM silences
        WHERE tenant_id = $1
          AND ($2::text IS NULL OR service = $2)
          AND (NOT $3 OR ${ACTIVE})
          AND ($4::bigint IS NULL OR seq < $4)
        ORDER BY seq DESC
        LIMIT $5`,
      [tenantId, filter.service ?? null, filter.activeOnly ?? false, afterSeq ?? null, limit],
    );
    return rows.map(toRow);
  }

  /** Ends the silence now (kept for the record). Null when the tenant has no such silence. */
  async end(tenantId: string, id: string): Promise<SilenceRow | null> {
    // An UPDATE answers [rows, count] through TypeORM.
    const [[row]]: [Record<string, unknown>[], number] = await this.dataSource.query(
      `UPDATE silences SET ended_at = COALESCE(ended_at, LEAST(now(), expires_at))
        WHERE tenant_id = $1 AND id = $2
        RETURNING *, false AS active`,
      [tenantId, id],
    );
    return row ? toRow(row) : null;
  }
}
