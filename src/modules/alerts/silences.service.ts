import { Injectable } from '@nestjs/common';
import { randomUUID } from 'crypto';
import { SilenceRepository, SilenceRow } from '../store/silence.repository';
import { AlertsException } from './alerts.exception';

/** Longest silence: a forgotten one must not hide alerts forever. */
export const MAX_SILENCE_MINUTES = 90 * 24 * 60;

export interface SilenceRequest {
  service: string;
  reason?: string;
  startsAt?: Date;
  expiresAt?: Date;
  durationMinutes?: number;
}

/** Silences: per tenant and service (or every service), always with an expiry. */
@Injectable()
export class SilencesService {
  constructor(private readonly silences: SilenceRepository) {}

  /** @throws AlertsException VALIDATION_FAILED for an expiry missing, doubled, past or too far. */
  create(tenantId: string, req: SilenceRequest, now = new Date()): Promise<SilenceRow> {
    if ((req.expiresAt === undefined) === (req.durationMinutes === undefined)) {
      throw AlertsException.invalidSilence('expires_at', 'give exactly one of expires_at and duration_minutes');
    }
    const start = req.startsAt ?? now;
    const expiresAt = req.expiresAt ?? new Date(start.getTime() + req.durationMinutes! * 60_000);
    if (expiresAt.getTime() <= Math.max(now.getTime(), start.getTime())) {
      throw AlertsException.invalidSilence('expires_at', 'must be in the future and after starts_at');
    }
    if (expiresAt.getTime() - Math.max(now.getTime(), start.getTime()) > MAX_SILENCE_MINUTES * 60_000) {
      throw AlertsException.invalidSilence('expires_at', `a silence lasts at most ${MAX_SILENCE_MINUTES / 1440} days`);
    }
    return this.silences.insert(tenantId, {
      id: randomUUID(),
      service: req.service,
      reason: req.reason ?? null,
      startsAt: req.startsAt ?? null,
      expiresAt,
    });
  }

  list(
    tenantId: string,
    filter: { service?: string; activeOnly?: boolean },
    limit: number,
    afterSeq?: number,
  ): Promise<SilenceRow[]> {
    return this.silences.list(tenantId, filter, limit, afterSeq);
  }

  /** Ends a silence now. @throws AlertsException SILENCE_NOT_FOUND when the tenant has no such silence. */
  async end(tenantId: string, id: string): Promise<SilenceRow> {
    const row = await this.silences.end(tenantId, id);
    if (!row) throw AlertsException.silenceNotFound(id);
    return row;
  }
}
