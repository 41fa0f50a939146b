import { randomUUID } from 'crypto';
import type { AlertDirection } from '../../config/app-config';
import type {
  AlertPlan,
  AlertSample,
  AlertSeverity,
  NewAlert,
  OpenAlert,
  PendingBatch,
} from '../store/alert.repository';
import type { DetectionRow } from '../store/event.repository';

/** What the policy needs from the configuration. */
export interface AlertPolicySettings {
  /** Anomalies less than this apart join one alert; this long without one closes it (recovery). */
  cooldownMs: number;
  /** An alert still going on this long after its latest message gets a new one (0: never). */
  renotifyMs: number;
  minSeverity: AlertSeverity;
  direction: AlertDirection;
}

/** Why an anomaly did or did not become part of an alert (counted in Prometheus). */
export type AnomalyOutcome = 'opened' | 'grouped' | 'renotified' | 'below_severity' | 'other_direction' | 'silenced';

const SEVERITY_RANK: Record<AlertSeverity, number> = { info: 1, warning: 2, critical: 3 };

/**
 * Severity of an event anomaly from its score (decision_function convention, negative = anomalous).
 * The cut points sit where both scorers agree: a cold-start baseline reaches -0.05 at about 4.2 MADs
 * and -0.15 at about 5.6 MADs (a rare server error scores -0.25), and a model's anomalies beyond its
 * training range score below -0.15.
 *
 * A series anomaly's score is threshold − likelihood, a tiny number whatever the threshold, so it
 * is graded by its tail instead: how much rarer than the threshold it is, (1 − likelihood) against
 * (1 − threshold) — a hundred times → critical, ten times → warning.
 */
export function severityOf(d: Pick<DetectionRow, 'kind' | 'score' | 'likelihood'>): AlertSeverity {
  if (d.kind === 'series' && typeof d.likelihood === 'number') {
    const threshold = d.score + d.likelihood;
    const tail = (1 - d.likelihood) / Math.max(1e-12, 1 - threshold);
    if (tail <= 0.01) return 'critical';
    if (tail <= 0.1) return 'warning';
    return 'info';
  }
  if (d.score <= -0.15) return 'critical';
  if (d.score <= -0.05) return 'warning';
  return 'info';
}

export const maxSeverity = (a: AlertSeverity, b: AlertSeverity): AlertSeverity =>
  SEVERITY_RANK[a] >= SEVERITY_RANK[b] ? a : b;

type ExplanationLike = { features?: { name?: string; value?: number | null; p50?: number | null }[] } | null;

/**
 * Whether a latency anomaly is a slowdown or a speed-up: a latency series against its expected
 * value, or an event whose explanation names duration as its main feature, against its p50. Other
 * anomalies (server errors, response sizes, traffic) have no direction (null) and pass every
 * direction setting.
 */
export function directionOf(
  d: Pick<DetectionRow, 'kind' | 'metric' | 'value' | 'expected' | 'explanation'>,
): 'slower' | 'faster' | null {
  let value: number | null | undefined;
  let reference: number | null | undefined;
  if (d.kind === 'series') {
    if (!d.metric?.startsWith('latency')) return null;
    value = d.value;
    reference = d.expected;
  } else {
    const top = (d.explanation as ExplanationLike)?.features?.[0];
    if (top?.name !== 'duration_ms') return null;
    value = top.value;
    reference = top.p50;
  }
  if (typeof value !== 'number' || typeof reference !== 'number' || value === reference) return null;
  return value > reference ? 'slower' : 'faster';
}

export function sampleOf(d: DetectionRow): AlertSample {
  return {
    detectionId: d.id,
    kind: d.kind,
    ts: d.ts.toISOString(),
    score: d.score,
    durationMs: d.durationMs,
    statusCode: d.statusCode,
    scorer: d.baseline ? 'baseline' : 'model',
    modelVersion: d.modelVersion,
    explanation: (d.explanation as AlertSample['explanation']) ?? null,
    ...(d.kind === 'series' ? { metric: d.metric ?? null, value: d.value ?? null, expected: d.expected ?? null } : {}),
  };
}

/**
 * The alert policy, as a pure function of a batch of new anomalies (oldest first) and the open
 * alerts of their services. Time is the detections' storage time, so a batch reconciled late is
 * judged as it would have been live. Per tenant and service:
 * - an anomaly with no open alert opens one (a message sent at once), unless the service is silenced;
 * - one arriving less than the cooldown after the alert's last anomaly joins its count;
 * - one arriving once the latest message is `renotifyMs` old while it goes on re-notifies
 *   (a new message, with the count since), unless silenced;
 * - one arriving a cooldown or more after the last closes the old alert (recovery) and opens a new one;
 * - anomalies below the minimum severity, or in the other direction, are left out altogether.
 */
export function planAlerts(
  batch: PendingBatch,
  settings: AlertPolicySettings,
  newId: () => string = randomUUID,
): AlertPlan & { outcomes: Map<AnomalyOutcome, number> } {
  const plan: AlertPlan = { updates: [], ops: [], assignments: [] };
  const outcomes = new Map<AnomalyOutcome, number>();
  const count = (o: AnomalyOutcome) => outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
  // Copies of the stored open alerts, updated in place as anomalies join them.
  const existing = new Map<string, OpenAlert>(batch.open.map((a) => [a.id, { ...a }]));
  const current = new Map<string, OpenAlert>([...existing.values()].map((a) => [a.service, a]));
  const touched = new Set<string>();
  const silenced = new Set(batch.silenced);
  const isSilenced = (service: string) => silenced.has(service) || silenced.has('*');
  const minRank = SEVERITY_RANK[settings.minSeverity];

  const open = (
    d: DetectionRow,
    kind: 'open' | 'renotify',
    incidentId: string | null,
    severity: AlertSeverity,
  ): NewAlert => {
    const id = newId();
    const at = d.createdAt ?? d.ts;
    const alert: NewAlert = {
      id,
      incidentId: incidentId ?? id,
      service: d.service,
      kind,
      severity,
      anomalyCount: 1,
      firstSeen: at,
      lastSeen: at,
      worst: sampleOf(d),
    };
    plan.ops.push({ type: 'insert', alert });
    current.set(d.service, alert);
    return alert;
  };

  for (const d of batch.detections) {
    const at = d.createdAt ?? d.ts;
    const severity = severityOf(d);
    if (SEVERITY_RANK[severity] < minRank) {
      count('below_severity');
      plan.assignments.push({ detectionId: d.id, alertId: null });
      continue;
    }
    const direction = directionOf(d);
    if (settings.direction !== 'both' && direction !== null && direction !== settings.direction) {
      count('other_direction');
      plan.assignments.push({ detectionId: d.id, alertId: null });
      continue;
    }
    const quiet = isSilenced(d.service);
    let cur = current.get(d.service);
    if (cur && at.getTime() - cur.lastSeen.getTime() >= settings.cooldownMs) {
      plan.ops.push({ type: 'recover', incidentId: cur.incidentId, recoveryId: newId(), silenced: quiet });
      current.delete(d.service);
      cur = undefined;
    }
    if (!cur) {
      if (quiet) {
        count('silenced');
        plan.assignments.push({ detectionId: d.id, alertId: null });
        continue;
      }
      const a = open(d, 'open', null, severity);
      count('opened');
      plan.assignments.push({ detectionId: d.id, alertId: a.id });
      continue;
    }
    if (!quiet && settings.renotifyMs > 0 && at.getTime() - cur.firstSeen.getTime() >= settings.renotifyMs) {
      const a = open(d, 'renotify', cur.incidentId, severity);
      count('renotified');
      plan.assignments.push({ detectionId: d.id, alertId: a.id });
      continue;
    }
    // Joins the alert, silenced or not: the incident is still going on.
    cur.anomalyCount++;
    if (at > cur.lastSeen) cur.lastSeen = at;
    cur.severity = maxSeverity(cur.severity, severity);
    if (!cur.worst || d.score < cur.worst.score) cur.worst = sampleOf(d);
    if (existing.has(cur.id)) touched.add(cur.id);
    count('grouped');
    plan.assignments.push({ detectionId: d.id, alertId: cur.id });
  }
  // Stored rows that anomalies joined; one closed later in this batch is updated before its recovery counts it.
  plan.updates = [...touched].map((id) => existing.get(id)!);
  return { ...plan, outcomes };
}
