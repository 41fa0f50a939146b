import { randomUUID } from 'crypto';
import type { AlertSeverity } from '../store/alert.repository';
import type { DetectionRow } from '../store/event.repository';
import type { IncidentBatch, IncidentMessage, IncidentPlan, IncidentSignal, OpenIncident } from '../store/incident.repository';

/** What the policy needs from the configuration. */
export interface IncidentPolicySettings {
  /** Event time without new evidence after which an incident has ended (ALERT_COOLDOWN_MINUTES). */
  cooldownMs: number;
  /** An incident still going on this long (event time) after its latest message gets a new one (0: never). */
  renotifyMs: number;
  /** Incidents below this severity are recorded but send no message (ALERT_MIN_SEVERITY). */
  minSeverity: AlertSeverity;
}

/** Why a detection did or did not take part in an incident (counted in Prometheus). */
export type AnomalyOutcome = 'opened' | 'joined' | 'escalated' | 'renotified' | 'evidence' | 'event_in_incident' | 'event_alone';

const RANK: Record<AlertSeverity, number> = { info: 1, warning: 2, critical: 3 };
export const maxSeverity = (a: AlertSeverity, b: AlertSeverity): AlertSeverity => (RANK[a] >= RANK[b] ? a : b);
const MINUTE = 60_000;

/** The signal a series detection is evidence of (from the metadata the series job writes). */
export function signalOf(d: DetectionRow): IncidentSignal | null {
  if (d.kind !== 'series') return null;
  const m = (d.metadata ?? {}) as Record<string, unknown>;
  const since = typeof m.since === 'string' ? new Date(m.since) : d.ts;
  return {
    signal: typeof m.signal === 'string' ? m.signal : (d.metric ?? 'series'),
    metric: d.metric ?? null,
    severity: m.severity === 'critical' ? 'critical' : 'warning',
    direction: m.direction === 'down' ? 'down' : 'up',
    firstAt: since.toISOString(),
    lastAt: d.ts.toISOString(),
    value: d.value ?? null,
    expected: d.expected ?? null,
    ratio: typeof m.ratio === 'number' ? m.ratio : null,
    logP: typeof m.log_p === 'number' ? m.log_p : null,
    summary: (d.explanation as { summary?: string } | null)?.summary ?? null,
    detections: 1,
  };
}

/** Merges a new finding of a signal into what the incident already knows of it (keeps the strongest). */
function mergeSignal(old: IncidentSignal, f: IncidentSignal): IncidentSignal {
  const stronger = (f.logP ?? 0) < (old.logP ?? 0);
  return {
    ...(stronger ? f : old),
    severity: maxSeverity(old.severity, f.severity) as IncidentSignal['severity'],
    // Dated by its first finding: a later finding over a longer window reaches back further, but not into the incident.
    firstAt: old.firstAt,
    lastAt: old.lastAt > f.lastAt ? old.lastAt : f.lastAt,
    detections: old.detections + 1,
  };
}

/**
 * The incident policy (SPEC §8, issue 12), as a pure function of a batch of pending detections and
 * the open incidents of their services. Everything is in event time (the detections' `ts`), so a
 * backfill, a catch-up and live traffic decide the same. Per tenant and service:
 * - a series detection (a per-minute signal found anomalous: traffic, errors, latency, response
 *   size, or more per-event anomalies than the model's rate explains) opens an incident when none is
 *   open, starting at the first minute of its evidence; a single anomalous request never does;
 * - one arriving a cooldown or more (event time) after the open incident's last evidence ends that
 *   incident (at the end of its last evidence minute) and opens a new one;
 * - otherwise it joins: a new signal (other than the per-event anomaly rate, which mostly restates
 *   the others) or a higher severity escalates (a message), and an incident
 *   still going on `renotifyMs` after its last message gets a reminder;
 * - event anomalies join the open incident of their service when they fall in its window, else they
 *   stay data (no message);
 * - messages are left out below the minimum severity (an escalation that reaches it sends the
 *   opening message then) and for silenced services (the incident is still recorded).
 * Recovery of an incident that has had no evidence for a cooldown is decided by the repository
 * against the service's closed minutes (the series watermark), also in event time.
 */
export function planIncidents(
  batch: IncidentBatch,
  settings: IncidentPolicySettings,
  newId: () => string = randomUUID,
): IncidentPlan & { outcomes: Map<AnomalyOutcome, number> } {
  const plan: IncidentPlan = { upserts: [], ends: [], messages: [], assignments: [] };
  const outcomes = new Map<AnomalyOutcome, number>();
  const count = (o: AnomalyOutcome) => outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
  const current = new Map<string, OpenIncident>(batch.open.map((i) => [i.service, { ...i, signals: i.signals.map((s) => ({ ...s })) }]));
  const touched = new Map<string, OpenIncident>();
  const silenced = new Set(batch.silenced);
  const isSilenced = (service: string) => silenced.has(service) || silenced.has('*');
  const minRank = RANK[settings.minSeverity];

  const message = (inc: OpenIncident, kind: IncidentMessage['kind'], at: Date) => {
    if (isSilenced(inc.service) || RANK[inc.severity] < minRank) return false;
    plan.messages.push({ id: newId(), incidentId: inc.id, kind, at, snapshot: { ...inc, signals: inc.signals.map((s) => ({ ...s })) } });
    inc.notifiedSeverity = inc.severity;
    inc.lastMessageAt = at;
    return true;
  };

  const ordered = [...batch.detections].sort((a, b) => a.ts.getTime() - b.ts.getTime() || (a.kind === b.kind ? 0 : a.kind === 'series' ? -1 : 1));
  for (const d of ordered) {
    const t = d.ts.getTime();
    let cur = current.get(d.service);
    const signal = signalOf(d);
    if (!signal) {
      // A per-event anomaly: data, part of an incident only when it falls in one's window.
      if (cur && t >= cur.startedAt.getTime() - MINUTE && t < cur.lastEvidenceAt.getTime() + MINUTE) {
        plan.assignments.push({ detectionId: d.id, incidentId: cur.id });
        count('event_in_incident');
      } else {
        plan.assignments.push({ detectionId: d.id, incidentId: null });
        count('event_alone');
      }
      continue;
    }
    if (cur && t - cur.lastEvidenceAt.getTime() >= settings.cooldownMs) {
      plan.ends.push({ incidentId: cur.id, endedAt: new Date(cur.lastEvidenceAt.getTime() + MINUTE), recoveryId: newId(), silenced: isSilenced(cur.service), notified: cur.notifiedSeverity !== null });
      current.delete(d.service);
      cur = undefined;
    }
    if (!cur) {
      const inc: OpenIncident = {
        id: newId(),
        service: d.service,
        severity: signal.severity,
        direction: signal.direction,
        startedAt: new Date(signal.firstAt),
        detectedAt: new Date(t + MINUTE),
        lastEvidenceAt: d.ts,
        signals: [signal],
        notifiedSeverity: null,
        lastMessageAt: null,
      };
      current.set(d.service, inc);
      touched.set(inc.id, inc);
      message(inc, 'open', inc.detectedAt);
      plan.assignments.push({ detectionId: d.id, incidentId: inc.id });
      count('opened');
      continue;
    }
    // Evidence for the open incident.
    const i = cur.signals.findIndex((s) => s.signal === signal.signal);
    const joined = i < 0;
    if (joined) cur.signals.push(signal);
    else cur.signals[i] = mergeSignal(cur.signals[i], signal);
    const before = cur.severity;
    cur.severity = maxSeverity(cur.severity, signal.severity);
    if (t > cur.lastEvidenceAt.getTime()) cur.lastEvidenceAt = d.ts;
    touched.set(cur.id, cur);
    plan.assignments.push({ detectionId: d.id, incidentId: cur.id });
    const at = new Date(t + MINUTE);
    if (cur.notifiedSeverity === null) {
      // Not announced yet (below the minimum severity, or silenced): announce once it qualifies.
      if (message(cur, 'open', at)) count('opened');
      else count('evidence');
    } else if ((joined && signal.signal !== 'anomalies') || RANK[cur.severity] > RANK[before]) {
      // The per-event anomaly rate joining adds no news to a signal already announced: it follows from it.
      if (message(cur, 'escalate', at)) count('escalated');
      else count(joined ? 'joined' : 'evidence');
    } else if (settings.renotifyMs > 0 && cur.lastMessageAt && t + MINUTE - cur.lastMessageAt.getTime() >= settings.renotifyMs) {
      if (message(cur, 'renotify', at)) count('renotified');
      else count('evidence');
    } else count('evidence');
  }
  plan.upserts = [...touched.values()];
  return { ...plan, outcomes };
}

/** An incident as a backtest finds it (the shape of GET /incidents items it needs). */
export interface SimulatedIncident {
  service: string;
  severity: AlertSeverity;
  direction: 'up' | 'down' | null;
  started_at: string;
  detected_at: string;
  last_evidence_at: string;
  ended_at: string | null;
  signals: IncidentSignal[];
  anomaly_count: number;
}

/**
 * The incidents the live pipeline would open for these detections (series findings and event
 * anomalies of one tenant, any order), with `lastMinute` (per service, epoch ms) the last minute
 * its series closed: the policy over them in event-time order, then the end of each incident that
 * had no evidence for a cooldown before that minute. Event anomalies are counted into the incident
 * whose window holds them, as the repository attaches them.
 */
export function simulateIncidents(detections: DetectionRow[], settings: IncidentPolicySettings, lastMinute: Map<string, number>): SimulatedIncident[] {
  const plan = planIncidents({ detections, open: [], silenced: [] }, settings);
  const ended = new Map(plan.ends.map((e) => [e.incidentId, e.endedAt.getTime()]));
  const evidence = new Map<string, number>();
  for (const a of plan.assignments) if (a.incidentId) evidence.set(a.incidentId, (evidence.get(a.incidentId) ?? 0) + 1);
  const events = detections.filter((d) => d.kind === 'event');
  return plan.upserts
    .map((i) => {
      const last = i.lastEvidenceAt.getTime();
      let end = ended.get(i.id) ?? null;
      if (end === null && (lastMinute.get(i.service) ?? -Infinity) >= last + settings.cooldownMs) end = last + MINUTE;
      const from = i.startedAt.getTime() - MINUTE;
      const to = end ?? last + MINUTE;
      const series = i.signals.reduce((n, s) => n + s.detections, 0);
      const inWindow = events.filter((d) => d.service === i.service && d.ts.getTime() >= from && d.ts.getTime() < to).length;
      return {
        service: i.service,
        severity: i.severity,
        direction: i.direction,
        started_at: i.startedAt.toISOString(),
        detected_at: i.detectedAt.toISOString(),
        last_evidence_at: i.lastEvidenceAt.toISOString(),
        ended_at: end === null ? null : new Date(end).toISOString(),
        signals: i.signals,
        anomaly_count: series + inWindow,
      };
    })
    .sort((a, b) => a.started_at.localeCompare(b.started_at));
}
