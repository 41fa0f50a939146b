import { randomBytes } from 'crypto';

/** An ingest item in the seed's nested shape. */
export function httpEvent(over: { service?: string; durationMs?: number; status?: number; bytes?: number; at?: Date; id?: string } = {}): Record<string, unknown> {
  return {
    ...(over.id ? { id: over.id } : {}),
    timestamp: (over.at ?? new Date(Date.UTC(2025, 10, 14, 12))).toISOString(),
    service: over.service ?? 'api',
    http: { request: { method: 'GET', path: '/p' }, response: { status_code: over.status ?? 200, bytes: over.bytes ?? 5000 } },
    performance: { duration_ms: over.durationMs ?? 100 },
  };
}

export const newEventId = () => `ev-${randomBytes(6).toString('hex')}`;
