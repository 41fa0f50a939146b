import { AlertPlan, NewAlert, OpenAlert } from '../store/alert.repository';
import { DetectionRow } from '../store/event.repository';
import { AlertPolicySettings, directionOf, planAlerts, severityOf } from './alert-policy';

const T0 = Date.UTC(2025, 10, 14, 12);
const MIN = 60_000;
const settings: AlertPolicySettings = {
  cooldownMs: 10 * MIN,
  renotifyMs: 60 * MIN,
  minSeverity: 'info',
  direction: 'both',
};

let n = 0;
function detection(over: Partial<DetectionRow> & { atMin?: number } = {}): DetectionRow {
  const at = new Date(T0 + (over.atMin ?? 0) * MIN);
  return {
    id: `d${++n}`,
    kind: 'event',
    eventId: `e${n}`,
    service: 'api',
    ts: at,
    score: -0.2,
    prediction: -1,
    driftAlert: false,
    modelVersion: 1,
    baseline: false,
    explanation: {
      summary: 'status_code 503 is a server error',
      features: [{ name: 'status_code', value: 503, p50: 200, p99: 200, contribution: 1 }],
    },
    metadata: null,
    durationMs: 100,
    statusCode: 503,
    createdAt: at,
    ...over,
  };
}

const slow = (atMin: number, over: Partial<DetectionRow> = {}) =>
  detection({
    atMin,
    explanation: {
      summary: 'slow',
      features: [{ name: 'duration_ms', value: 2000, p50: 100, p99: 400, contribution: 0.9 }],
    },
    ...over,
  });
const fast = (atMin: number) =>
  detection({
    atMin,
    explanation: {
      summary: 'fast',
      features: [{ name: 'duration_ms', value: 1, p50: 100, p99: 400, contribution: 0.9 }],
    },
  });

const inserts = (p: AlertPlan): NewAlert[] => p.ops.flatMap((o) => (o.type === 'insert' ? [o.alert] : []));
const recoveries = (p: AlertPlan) => p.ops.filter((o) => o.type === 'recover');
let ids = 0;
const newId = () => `a${++ids}`;

function openAlert(over: Partial<OpenAlert> = {}): OpenAlert {
  return {
    id: 'open-1',
    incidentId: 'open-1',
    service: 'api',
    kind: 'open',
    severity: 'warning',
    anomalyCount: 3,
    firstSeen: new Date(T0),
    lastSeen: new Date(T0 + 2 * MIN),
    worst: null,
    ...over,
  };
}

describe('alert policy', () => {
  describe(planAlerts.name, () => {
    it('should open one alert for a burst and group the rest into its count', () => {
      const burst = Array.from({ length: 50 }, (_, i) => detection({ atMin: i / 60 }));
      const sut = planAlerts({ detections: burst, open: [], silenced: [] }, settings, newId);
      expect(inserts(sut)).toHaveLength(1);
      expect(inserts(sut)[0]).toMatchObject({ kind: 'open', anomalyCount: 50, service: 'api', severity: 'critical' });
      expect(inserts(sut)[0].lastSeen).toEqual(burst[49].createdAt);
      expect(new Set(sut.assignments.map((a) => a.alertId))).toEqual(new Set([inserts(sut)[0].id]));
      expect(sut.outcomes.get('opened')).toBe(1);
      expect(sut.outcomes.get('grouped')).toBe(49);
    });

    it('should open one alert per service', () => {
      const sut = planAlerts(
        {
          detections: [detection({ service: 'a' }), detection({ service: 'b' }), detection({ service: 'a' })],
          open: [],
          silenced: [],
        },
        settings,
        newId,
      );
      expect(inserts(sut).map((a) => [a.service, a.anomalyCount])).toEqual([
        ['a', 2],
        ['b', 1],
      ]);
    });

    it('should join a stored open alert within the cooldown, updating its count, last seen and worst', () => {
      const d = detection({ atMin: 5, score: -0.4 });
      const sut = planAlerts({ detections: [d], open: [openAlert()], silenced: [] }, settings, newId);
      expect(sut.ops).toEqual([]);
      expect(sut.updates).toEqual([
        expect.objectContaining({
          id: 'open-1',
          anomalyCount: 4,
          lastSeen: d.createdAt,
          severity: 'critical',
          worst: expect.objectContaining({ detectionId: d.id, score: -0.4 }),
        }),
      ]);
      expect(sut.assignments).toEqual([{ detectionId: d.id, alertId: 'open-1' }]);
    });

    it('should keep the alert going while anomalies stay less than a cooldown apart, then re-notify once the interval has passed', () => {
      // One anomaly every 5 minutes for 70 minutes: never a 10-minute gap.
      const steady = Array.from({ length: 15 }, (_, i) => detection({ atMin: i * 5 }));
      const sut = planAlerts({ detections: steady, open: [], silenced: [] }, settings, newId);
      expect(inserts(sut).map((a) => [a.kind, a.anomalyCount])).toEqual([
        ['open', 12],
        ['renotify', 3],
      ]);
      expect(inserts(sut)[1].incidentId).toBe(inserts(sut)[0].id);
      expect(recoveries(sut)).toEqual([]);
    });

    it('should not re-notify when ALERT_RENOTIFY_MINUTES is 0', () => {
      const steady = Array.from({ length: 30 }, (_, i) => detection({ atMin: i * 5 }));
      const sut = planAlerts({ detections: steady, open: [], silenced: [] }, { ...settings, renotifyMs: 0 }, newId);
      expect(inserts(sut).map((a) => a.kind)).toEqual(['open']);
    });

    it('should close an alert whose cooldown passed (recovery) before opening the next one', () => {
      const sut = planAlerts(
        { detections: [detection({ atMin: 12.5 })], open: [openAlert()], silenced: [] },
        settings,
        newId,
      );
      expect(sut.ops.map((o) => o.type)).toEqual(['recover', 'insert']);
      expect(sut.ops[0]).toMatchObject({ type: 'recover', incidentId: 'open-1', silenced: false });
      expect(inserts(sut)[0]).toMatchObject({ kind: 'open', anomalyCount: 1 });
      expect(sut.updates).toEqual([]);
    });

    it('should leave out anomalies below the minimum severity', () => {
      const sut = planAlerts(
        { detections: [detection({ score: -0.01 }), detection({ score: -0.08 })], open: [], silenced: [] },
        { ...settings, minSeverity: 'warning' },
        newId,
      );
      expect(inserts(sut)).toHaveLength(1);
      expect(inserts(sut)[0]).toMatchObject({ severity: 'warning', anomalyCount: 1 });
      expect(sut.assignments[0]).toEqual({ detectionId: expect.any(String), alertId: null });
      expect(sut.outcomes.get('below_severity')).toBe(1);
    });

    it('should alert on slowdowns only, speed-ups only, or both, letting anomalies without a direction through', () => {
      const batch = () => [slow(0, { service: 's' }), fast(0), detection({ service: 'e' })];
      const kinds = (direction: AlertPolicySettings['direction']) =>
        inserts(planAlerts({ detections: batch(), open: [], silenced: [] }, { ...settings, direction }, newId))
          .map((a) => a.service)
          .sort();
      expect(kinds('slower')).toEqual(['e', 's']);
      expect(kinds('faster')).toEqual(['api', 'e']);
      expect(kinds('both')).toEqual(['api', 'e', 's']);
    });

    it('should open nothing for a silenced service, and let a silenced open alert count without re-notifying', () => {
      const quiet = planAlerts(
        { detections: [detection({ service: 'x' }), detection({ service: 'y' })], open: [], silenced: ['x'] },
        settings,
        newId,
      );
      expect(inserts(quiet).map((a) => a.service)).toEqual(['y']);
      expect(quiet.outcomes.get('silenced')).toBe(1);

      const all = planAlerts({ detections: [detection({ service: 'x' })], open: [], silenced: ['*'] }, settings, newId);
      expect(all.ops).toEqual([]);

      const ongoing = planAlerts(
        {
          detections: [detection({ atMin: 65 })],
          open: [openAlert({ lastSeen: new Date(T0 + 60 * MIN) })],
          silenced: ['api'],
        },
        settings,
        newId,
      );
      expect(ongoing.ops).toEqual([]);
      expect(ongoing.updates[0]).toMatchObject({ anomalyCount: 4 });
    });

    it('should record the recovery of an incident that ends while silenced as silenced', () => {
      const sut = planAlerts(
        { detections: [detection({ atMin: 30 })], open: [openAlert()], silenced: ['api'] },
        settings,
        newId,
      );
      expect(sut.ops).toEqual([
        { type: 'recover', incidentId: 'open-1', recoveryId: expect.any(String), silenced: true },
      ]);
      expect(sut.assignments[0].alertId).toBeNull();
    });

    it('should treat baseline- and model-scored anomalies alike', () => {
      const sut = planAlerts(
        {
          detections: [detection({ baseline: true, modelVersion: null }), detection({ baseline: false })],
          open: [],
          silenced: [],
        },
        settings,
        newId,
      );
      expect(inserts(sut)).toHaveLength(1);
      expect(inserts(sut)[0]).toMatchObject({
        anomalyCount: 2,
        worst: expect.objectContaining({ scorer: 'baseline' }),
      });
    });
  });

  describe(severityOf.name, () => {
    it('should grade event scores into info, warning and critical', () => {
      expect([-0.01, -0.05, -0.1, -0.15, -0.5].map((score) => severityOf({ kind: 'event', score }))).toEqual([
        'info',
        'warning',
        'warning',
        'critical',
        'critical',
      ]);
    });

    it('should grade a series anomaly by how much rarer than its threshold it is', () => {
      const series = (likelihood: number, threshold = 0.9999) =>
        severityOf({ kind: 'series', score: threshold - likelihood, likelihood });
      expect([0.99995, 0.999991, 0.9999995, 1].map((l) => series(l))).toEqual([
        'info',
        'warning',
        'critical',
        'critical',
      ]);
      expect(series(0.995, 0.99)).toBe('info');
      expect(series(0.9999, 0.99)).toBe('critical');
    });
  });

  describe(directionOf.name, () => {
    it('should judge an event by its duration against p50 when duration drove the anomaly', () => {
      expect(directionOf(slow(0))).toBe('slower');
      expect(directionOf(fast(0))).toBe('faster');
      expect(directionOf(detection())).toBeNull();
      expect(directionOf(detection({ explanation: null }))).toBeNull();
    });

    it('should judge a latency series by its value against the expected one', () => {
      expect(directionOf(detection({ kind: 'series', metric: 'latency_p95', value: 900, expected: 300 }))).toBe(
        'slower',
      );
      expect(directionOf(detection({ kind: 'series', metric: 'latency_p95', value: 100, expected: 300 }))).toBe(
        'faster',
      );
      expect(directionOf(detection({ kind: 'series', metric: 'error_rate', value: 0.5, expected: 0.01 }))).toBeNull();
    });
  });
});
