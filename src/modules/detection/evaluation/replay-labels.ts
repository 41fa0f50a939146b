import { readFileSync } from 'fs';
import { SimulatedIncident } from '../../alerts/incident-policy';
import { FoundIncident, IncidentLabel } from './incident-report';
import { BENIGN_KINDS } from './scenario';

/**
 * Labels for the incident report of a replay (`npm run replay -- --format ndjson … [--labels F]`):
 * read from a labels file (what `npm run evaluate -- --write-dir D` writes, or any hand-made one), or
 * derived from the `label` field the input's events carry (what `npm run generate-data` writes). The
 * report itself is incident-report.ts's, the same as `npm run evaluate` prints.
 */

const MINUTE_MS = 60_000;
/** Labelled events of one service and kind further apart than this start a new labelled window. */
const LABEL_RUN_GAP_MS = 15 * MINUTE_MS;

/** A labels file could not be used; the message names the item and field. */
export class LabelFileError extends Error {}

const isBenign = (kind: string) => (BENIGN_KINDS as readonly string[]).includes(kind);

function timeOf(v: unknown, where: string): number {
  const t = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(t)) throw new LabelFileError(`${where}: expected an ISO 8601 date-time or epoch milliseconds, got ${JSON.stringify(v)}`);
  return t;
}

/**
 * Reads a labels file: a JSON array (or `{ "labels": [...] }`) of
 * `{ tenant?, service, kind, start, end, benign? }` with `start` inclusive and `end` exclusive as ISO
 * 8601 date-times or epoch ms; `tenant` defaults to `defaultTenant`, `benign` to whether `kind` is one
 * of the benign kinds (faster_deploy, traffic_increase).
 * @throws LabelFileError naming the item and field when the file is not JSON or an item is invalid;
 *         the fs error when it cannot be read.
 */
export function readLabelFile(path: string, defaultTenant: string): IncidentLabel[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw e;
    throw new LabelFileError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  const items = Array.isArray(doc) ? doc : (doc as { labels?: unknown })?.labels;
  if (!Array.isArray(items)) throw new LabelFileError(`${path}: expected a JSON array of labels or { "labels": [...] }`);
  return items.map((item: unknown, i): IncidentLabel => {
    const where = `${path}: labels[${i}]`;
    if (!item || typeof item !== 'object') throw new LabelFileError(`${where}: expected an object`);
    const l = item as Record<string, unknown>;
    for (const f of ['service', 'kind'] as const) {
      if (typeof l[f] !== 'string' || l[f] === '') throw new LabelFileError(`${where}.${f}: expected a non-empty string`);
    }
    if (l.tenant !== undefined && (typeof l.tenant !== 'string' || l.tenant === '')) throw new LabelFileError(`${where}.tenant: expected a non-empty string`);
    if (l.benign !== undefined && typeof l.benign !== 'boolean') throw new LabelFileError(`${where}.benign: expected true or false`);
    const start = timeOf(l.start, `${where}.start`);
    const end = timeOf(l.end, `${where}.end`);
    if (end <= start) throw new LabelFileError(`${where}.end: must be after start`);
    const kind = l.kind as string;
    return { tenant: (l.tenant as string | undefined) ?? defaultTenant, service: l.service as string, kind, start, end, benign: (l.benign as boolean | undefined) ?? isBenign(kind) };
  });
}

/**
 * Labelled windows from per-event labels: the events of one service carrying one label, split where
 * two of them are more than 15 minutes apart, each run giving [its first event's minute, its last
 * event's minute + 1 min). A change without events of its own (a drop to zero) cannot be labelled
 * this way; use a labels file for it.
 * @param events event times (epoch ms) and services, in any order, with `labels[i]` for `events[i]`
 */
export function labelsFromEvents(
  tenant: string,
  events: readonly { service: string; timestamp: Date }[],
  labels: readonly (string | undefined)[],
): IncidentLabel[] {
  const byKey = new Map<string, number[]>();
  events.forEach((e, i) => {
    const kind = labels[i];
    if (!kind) return;
    const key = `${e.service}\u0000${kind}`;
    const times = byKey.get(key) ?? [];
    times.push(e.timestamp.getTime());
    byKey.set(key, times);
  });
  const out: IncidentLabel[] = [];
  for (const [key, times] of byKey) {
    const [service, kind] = key.split('\u0000');
    times.sort((a, b) => a - b);
    let first = times[0];
    for (let i = 1; i <= times.length; i++) {
      if (i === times.length || times[i] - times[i - 1] > LABEL_RUN_GAP_MS) {
        const floor = (t: number) => t - (((t % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
        out.push({ tenant, service, kind, start: floor(first), end: floor(times[i - 1]) + MINUTE_MS, benign: isBenign(kind) });
        if (i < times.length) first = times[i];
      }
    }
  }
  return out.sort((a, b) => a.start - b.start || a.service.localeCompare(b.service));
}

/** The incidents a replay opened, in the shape the report reads (as `GET /incidents` lists them). */
export function foundIncidentsOf(tenant: string, incidents: readonly SimulatedIncident[]): FoundIncident[] {
  return incidents.map((i) => ({ ...i, tenant, signals: i.signals.map((s) => ({ signal: s.signal, first_at: s.firstAt })) }));
}
