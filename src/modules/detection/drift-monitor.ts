import { LogEvent } from './features/log-event';
import { AnomalyModel, DRIFT_FEATURES, DriftCounts } from './model/anomaly-model';

const WINDOW = 1000;
const MIN_EVENTS = 200;
const RECHECK_EVERY = 100;

interface TenantWindow {
  model?: AnomalyModel;
  /** Ring of the last {@link WINDOW} events' drift bins: sub-model per event, bins per event × feature. */
  sub: Int32Array;
  bins: Int16Array;
  /** Ring position of the oldest event, and how many the ring holds. */
  start: number;
  size: number;
  /** The ring's bin counts per sub-model (null without a model). */
  counts: DriftCounts | null;
  sinceCheck: number;
  alert: boolean;
  psi: Record<string, number>;
}

/**
 * The drift flag of live scoring: the PSI of each watched feature over the tenant's last 1,000
 * events in this replica against the active model's training reference, recomputed every 100
 * events (at least 200 needed). Kept per replica: it is a flag on fresh detections, while the
 * authoritative per-feature figures of GET /metrics are computed from the stored events.
 *
 * Each event is binned once, when it arrives ({@link AnomalyModel.driftBins}), and the window
 * keeps its bin counts current as events enter and leave it, so a recheck costs a few dozen
 * divisions instead of re-binning 1,000 events: the request that happened to be the 100th no
 * longer pays for the other 99 (that was ≈ 1% of single-event requests carrying a few ms). The
 * figures are {@link AnomalyModel.drift}'s over the same window.
 */
export class DriftMonitor {
  private readonly windows = new Map<string, TenantWindow>();

  constructor(
    private readonly threshold: number,
    /** Told each time a tenant's PSI figures are recomputed (for the Prometheus gauge). */
    private readonly onUpdate: (tenantId: string, psi: Record<string, number>) => void = () => undefined,
  ) {}

  /** Adds the tenant's newly scored events to its window; returns the tenant's drift flag. */
  observe(tenantId: string, events: readonly LogEvent[], model: AnomalyModel | undefined): boolean {
    const width = DRIFT_FEATURES.length;
    let w = this.windows.get(tenantId);
    if (!w) {
      w = { sub: new Int32Array(WINDOW), bins: new Int16Array(WINDOW * width), start: 0, size: 0, counts: null, sinceCheck: 0, alert: false, psi: {} };
      this.windows.set(tenantId, w);
    }
    if (w.model !== model || (model && !w.counts)) {
      // A new model has a new reference: judge only what comes after it.
      w.model = model;
      w.counts = model ? model.driftCounts() : null;
      w.start = 0;
      w.size = 0;
      w.sinceCheck = 0;
      w.alert = false;
      w.psi = {};
    }
    if (!model || !w.counts || !events.length) return w.alert;
    // Only the last WINDOW of a large batch can stay in the window.
    const entering = events.length > WINDOW ? events.slice(events.length - WINDOW) : events;
    const { sub, bins } = model.driftBins(entering);
    for (let i = 0; i < entering.length; i++) {
      if (w.size === WINDOW) {
        w.counts.add(w.sub[w.start], w.bins, w.start, -1);
        w.start = (w.start + 1) % WINDOW;
        w.size--;
      }
      const at = (w.start + w.size) % WINDOW;
      w.sub[at] = sub[i];
      for (let k = 0; k < width; k++) w.bins[at * width + k] = bins[i * width + k];
      w.counts.add(w.sub[at], w.bins, at, 1);
      w.size++;
    }
    w.sinceCheck += events.length;
    if (w.size >= MIN_EVENTS && w.sinceCheck >= RECHECK_EVERY) {
      const r = model.driftFromCounts(w.counts, this.threshold);
      w.alert = r.alert;
      w.psi = r.psi;
      w.sinceCheck = 0;
      this.onUpdate(tenantId, r.psi);
    }
    return w.alert;
  }
}
