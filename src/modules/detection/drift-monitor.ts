import { LogEvent } from './features/log-event';
import { AnomalyModel } from './model/anomaly-model';

const WINDOW = 1000;
const MIN_EVENTS = 200;
const RECHECK_EVERY = 100;

interface TenantWindow {
  events: LogEvent[];
  sinceCheck: number;
  model?: AnomalyModel;
  alert: boolean;
  psi: Record<string, number>;
}

/**
 * The drift flag of live scoring: the PSI of each watched feature over the tenant's last 1,000
 * events in this replica against the active model's training reference, recomputed every 100
 * events (at least 200 needed). Kept per replica: it is a flag on fresh detections, while the
 * authoritative per-feature figures of GET /metrics are computed from the stored events.
 */
export class DriftMonitor {
  private readonly windows = new Map<string, TenantWindow>();

  constructor(
    private readonly threshold: number,
    /** Told each time a tenant's PSI figures are recomputed (for the Prometheus gauge). */
    private readonly onUpdate: (tenantId: string, psi: Record<string, number>) => void = () => undefined,
  ) {}

  observe(tenantId: string, events: readonly LogEvent[], model: AnomalyModel | undefined): boolean {
    let w = this.windows.get(tenantId);
    if (!w) {
      w = { events: [], sinceCheck: 0, alert: false, psi: {} };
      this.windows.set(tenantId, w);
    }
    if (w.model !== model) {
      // A new model has a new reference: judge only what comes after it.
      w.model = model;
      w.events = [];
      w.sinceCheck = 0;
      w.alert = false;
      w.psi = {};
    }
    for (const e of events) w.events.push(e);
    if (w.events.length > WINDOW) w.events.splice(0, w.events.length - WINDOW);
    w.sinceCheck += events.length;
    if (model && w.events.length >= MIN_EVENTS && w.sinceCheck >= RECHECK_EVERY) {
      const r = model.drift(w.events, this.threshold);
      w.alert = r.alert;
      w.psi = r.psi;
      w.sinceCheck = 0;
      this.onUpdate(tenantId, r.psi);
    }
    return w.alert;
  }
}
