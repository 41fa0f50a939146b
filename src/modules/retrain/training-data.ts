import { LogEvent } from '../detection/features/log-event';

/** Per service, an event-time stretch whose traffic stays out of training (an incident, a confirmed anomaly). */
export interface ExclusionWindow {
  service: string;
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, inclusive. */
  to: number;
}

export interface CleaningRules {
  /** A service needs at least this many events (after windows are taken out)… */
  minServiceEvents: number;
  /** …spanning at least this much event time (ms), or it is left out. */
  minServiceSpanMs: number;
}

/** A service left out of training, and why. */
export interface ServiceLeftOut {
  service: string;
  rows: number;
  spanMinutes: number;
  reason: 'too few events' | 'too short a span';
}

export interface CleanedData {
  events: LogEvent[];
  /** Events dropped for lying in an exclusion window. */
  inExclusionWindows: number;
  servicesLeftOut: ServiceLeftOut[];
}

/**
 * Training data without the traffic of known trouble: drops events inside their service's
 * exclusion windows, then services with too few events or too short an event-time span (a model
 * fitted on a few minutes of a service learns a few minutes of normal). O(n log w) with w windows.
 */
export function cleanTrainingData(
  events: readonly LogEvent[],
  windows: readonly ExclusionWindow[],
  rules: CleaningRules,
): CleanedData {
  const byService = new Map<string, [number, number][]>();
  for (const w of windows) {
    const list = byService.get(w.service) ?? [];
    list.push([w.from, w.to]);
    byService.set(w.service, list);
  }
  const merged = new Map<string, [number, number][]>();
  for (const [service, list] of byService) merged.set(service, mergeIntervals(list));

  let inExclusionWindows = 0;
  const kept = new Map<string, LogEvent[]>();
  for (const e of events) {
    const w = merged.get(e.service);
    if (w && inIntervals(w, e.timestamp.getTime())) {
      inExclusionWindows++;
      continue;
    }
    const list = kept.get(e.service) ?? [];
    list.push(e);
    kept.set(e.service, list);
  }
  const out: LogEvent[] = [];
  const servicesLeftOut: ServiceLeftOut[] = [];
  for (const [service, list] of kept) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const e of list) {
      const t = e.timestamp.getTime();
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
    const span = hi - lo;
    const spanMinutes = Math.round(span / 6_000) / 10;
    if (list.length < rules.minServiceEvents)
      servicesLeftOut.push({ service, rows: list.length, spanMinutes, reason: 'too few events' });
    else if (span < rules.minServiceSpanMs)
      servicesLeftOut.push({ service, rows: list.length, spanMinutes, reason: 'too short a span' });
    else for (const e of list) out.push(e);
  }
  return { events: out, inExclusionWindows, servicesLeftOut };
}

function mergeIntervals(list: [number, number][]): [number, number][] {
  list.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [a, b] of list) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Whether `t` lies in one of the sorted, disjoint intervals (binary search). */
function inIntervals(list: [number, number][], t: number): boolean {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t < list[mid][0]) hi = mid - 1;
    else if (t > list[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/**
 * Splits training data by event time: the newest `share` (at least one event when there are two
 * or more) is held out as the recent traffic a challenger is validated on; it trains on the rest.
 */
export function splitHoldout(events: readonly LogEvent[], share: number): { train: LogEvent[]; holdout: LogEvent[] } {
  const sorted = [...events].sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
  const n = sorted.length < 2 ? 0 : Math.max(1, Math.floor(sorted.length * share));
  return { train: sorted.slice(0, sorted.length - n), holdout: sorted.slice(sorted.length - n) };
}
