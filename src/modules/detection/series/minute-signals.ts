import { expectedNormalMax, logBinomialUpper, logNormalUpper, logPoissonLower, logPoissonUpper } from '../core/tail-probability';

/**
 * What one closed minute of one service holds, as summed from its events.
 * Latency and response size are summarised by the sums of their logs (ln(1 + x)), so the minute's
 * geometric mean and the spread within the minute follow without keeping the values.
 */
export interface MinuteStats {
  /** Requests in the minute. */
  count: number;
  /** Requests answered with a server error (status ≥ 500). */
  errors: number;
  /** Requests with a latency, and Σ ln(1 + duration_ms), Σ ln(1 + duration_ms)². */
  latN: number;
  latLogSum: number;
  latLogSq: number;
  /** Requests with a response size, and Σ ln(1 + bytes), Σ ln(1 + bytes)². */
  bytesN: number;
  bytesLogSum: number;
  bytesLogSq: number;
  /** Requests the per-event scorer (model or cold-start baseline) flagged anomalous. */
  anomalies: number;
  /** Largest and smallest ln(1 + duration_ms) and ln(1 + bytes) of the minute (0 without any). */
  latMax: number;
  latMin: number;
  bytesMax: number;
  bytesMin: number;
}

/** The signals judged per minute, with the metric name their detections carry. */
export const SIGNALS = {
  traffic: 'request_count',
  errors: 'error_rate',
  latency: 'latency',
  payload: 'response_bytes',
  anomalies: 'event_anomaly_rate',
} as const;
export type SignalName = keyof typeof SIGNALS;
export type SignalSeverity = 'warning' | 'critical';

/** Which way a signal is watched (SPEC §7: latency and errors up, traffic both ways by default). */
export type Watch = 'up' | 'down' | 'both';

export interface SignalOptions {
  /** Significance of every window test (probability under the reference). Default 1e-6. */
  alpha: number;
  /** Which way latency is watched (ALERT_DIRECTION: slower → up, faster → down). */
  latency: Watch;
  /** Contamination of the per-event model: the expected share of anomalous events. */
  contamination: number;
}

export const DEFAULT_SIGNAL_OPTIONS: SignalOptions = { alpha: 1e-6, latency: 'up', contamination: 0.01 };

/** The signal options of a configuration (SERIES_ALPHA, ALERT_DIRECTION, MODEL_CONTAMINATION). */
export function signalOptionsOf(c: { seriesAlpha: number; alertDirection: 'slower' | 'faster' | 'both'; modelContamination: 'auto' | number }): SignalOptions {
  return {
    alpha: c.seriesAlpha,
    latency: c.alertDirection === 'slower' ? 'up' : c.alertDirection === 'faster' ? 'down' : 'both',
    contamination: typeof c.modelContamination === 'number' ? c.modelContamination : 0.01,
  };
}

/** One signal found anomalous at a minute. */
export interface SignalFinding {
  signal: SignalName;
  metric: (typeof SIGNALS)[SignalName];
  /** Start of the window (epoch ms) whose test fired: the first minute of the evidence. */
  since: number;
  /** Window length in minutes. */
  windowMinutes: number;
  /** The window's value in the signal's unit: requests/min, error share, ms, bytes, anomalous share. */
  value: number;
  /** The reference (baseline) in the same unit. */
  expected: number;
  /** value / expected (for error and anomaly shares: the share above the reference, in points). */
  ratio: number;
  direction: 'up' | 'down';
  /** ln of the window's tail probability under the reference. */
  logP: number;
  severity: SignalSeverity;
  /** A sentence for people: what changed by how much against which baseline. */
  summary: string;
}

/**
 * Windows (in minutes) every signal is tested on: short ones catch a sharp change in its first
 * minute, long ones accumulate a slow one (the sum of several minutes' small excesses).
 */
const WINDOWS = [1, 2, 3, 5, 10, 20];
const RING = WINDOWS[WINDOWS.length - 1];
/** Half-life of the references, in minutes of data: long enough not to follow an incident, short enough to follow a daily cycle. */
const HALF_LIFE = 60;
const DECAY = Math.pow(2, -1 / HALF_LIFE);
/** Half-life of the spreads (variances), in minutes of data: a day, so that an incident cannot widen them into its own excuse. */
const SPREAD_DECAY = Math.pow(2, -1 / 1440);
/** Minutes with data a signal needs before it is tested. */
const WARMUP = 30;
/** Learnt minutes the guarded signals need: their newest 20 minutes are still in the test windows, so 30 minutes of data in all. */
const GUARDED_WARMUP = WARMUP - RING;
/** After this many minutes of a lasting change the references learn it anyway (a new normal). */
const MAX_FROZEN = 120;

/**
 * Practical significance: besides being improbable under the reference, a change must be this large
 * to be an incident — a faster deploy, a busier hour or a daily cycle is a real change too, but not
 * one to wake anybody for.
 */
/**
 * The error test only runs where its gate holds (≥ 3 errors and 5 points above the baseline) — a few
 * minutes a day at most — so the same daily false-alarm budget as the every-minute traffic and latency
 * tests allows it a 10× looser significance. It is what finds a 35 % error burst among 3–5 requests a
 * minute (4 errors in 17 requests: p ≈ 1e-6).
 */
const GATED_ALPHA_FACTOR = 10;

/**
 * The significance of a w-minute latency or size window test: alpha per minute of window. Tests of
 * long windows are strongly correlated from one minute to the next (a day holds about 1440 / w
 * independent ones), so alpha · w keeps every window length to about the same daily false-alarm
 * budget, and gives the long windows the power a slow ramp needs. Not for traffic: its long windows
 * follow the daily cycle's decline, where the looser test found evening dips (tried: 7 false
 * incidents in 24 runs instead of 0).
 */
const windowAlpha = (alpha: number, w: number) => alpha * w;

const EFFECT = {
  trafficDrop: 0.5,
  trafficSurge: 3,
  errorPoints: 0.05,
  minErrors: 3,
  latency: 1.3,
  payload: 2,
  anomalyFactor: 3,
  minAnomalies: 5,
};

interface GaussState {
  /** Reference mean of ln(1 + x) per minute. */
  mu: number;
  /** Minutes learnt since the latest rebase (absent once the level is back to its half-life weights). */
  restart?: number;
  /** Pooled variance of ln(1 + x) between events of a minute. */
  within: number;
  /** Variance of minute means beyond sampling noise (daily cycle lag, minute-to-minute wobble). */
  between: number;
  minutes: number;
}

/** Serialised state (small: a ring of 20 minutes and a handful of numbers per signal). */
export interface MinuteSignalsState {
  v: 2;
  ring: number[][];
  traffic: { mean: number; dispersion: number; minutes: number };
  errors: { errors: number; count: number; minutes: number };
  anomalies: { anomalies: number; count: number; minutes: number };
  latency: GaussState;
  payload: GaussState;
  frozen: Record<SignalName, number>;
  emptyRun: number;
  /** Start (epoch ms) of the gap the service is in, or null. */
  gapFrom: number | null;
  /** Minute (epoch ms) of each signal's latest finding. */
  lastFinding?: Partial<Record<SignalName, number>>;
  /** Minute (epoch ms) at which the reference took a lasting change in the direction not watched. */
  rebasedAt?: Partial<Record<'latency' | 'payload', number>>;
}

const FIELDS: (keyof MinuteStats)[] = [
  'count', 'errors', 'latN', 'latLogSum', 'latLogSq', 'bytesN', 'bytesLogSum', 'bytesLogSq', 'anomalies', 'latMax', 'latMin', 'bytesMax', 'bytesMin',
];
/** How a window combines each field over its minutes: extremes are extremes, the rest add up. */
const COMBINE = FIELDS.map((f) => (f.endsWith('Max') ? 'max' : f.endsWith('Min') ? 'min' : 'sum'));
/** For an extreme, the field that counts the values it is the extreme of (an extreme of no values says nothing). */
const COUNTED_BY = FIELDS.map((f) => (f.startsWith('lat') ? FIELDS.indexOf('latN') : FIELDS.indexOf('bytesN')));
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const pct = (x: number) => `${round(x * 100, 1)}%`;

/**
 * Per-service streaming tests of the per-minute signals of request logs, each judged the way its
 * kind of data behaves (issue 12; SPEC §7 "counts are judged as counts"):
 * - traffic: the window's request count against the expected count, Poisson (quasi-Poisson: the
 *   variance is inflated by the service's own measured dispersion), both ways;
 * - server errors: the window's errors given its requests, binomial against the reference share;
 * - latency and response size: the window's mean of ln(1 + x) against the reference (its single most
 *   extreme request left out), a z-test with the within-minute variance over the window's requests
 *   plus the between-minute variance;
 * - per-event anomalies: the window's anomalous events given its events, binomial against the
 *   model's own rate (contamination, or the measured rate when higher).
 * Each is tested over windows of 1–20 minutes; a finding needs tail probability < `alpha` and a
 * practically large effect (EFFECT). References are exponentially weighted (half-life 60 minutes of
 * data), learn a minute only once it has left the test windows (a 20-minute guard band; traffic at
 * once, its drops are found within minutes and it follows the daily cycle closely), and are
 * frozen while a signal is anomalous, so an incident does not become its own baseline; after
 * MAX_FROZEN minutes a lasting change is learnt as the new normal. A lasting change of latency the way it
 * is not watched (faster under ALERT_DIRECTION=slower: a faster deploy, the end of a degradation) is
 * taken by the reference at once (a rebase), so it neither hides the next slowdown nor fills the spreads
 * with hours of its own lag.
 * The tests are those of statistical process control (Montgomery, "Introduction to Statistical
 * Quality Control", ch. 7 and 9: c-, p- and EWMA charts) with exact tails instead of 3-sigma limits.
 */
export class MinuteSignals {
  private s: MinuteSignalsState;

  constructor(
    private readonly options: SignalOptions = DEFAULT_SIGNAL_OPTIONS,
    state?: MinuteSignalsState,
  ) {
    this.s = state ?? MinuteSignals.emptyState();
  }

  static emptyState(): MinuteSignalsState {
    const gauss = (): GaussState => ({ mu: 0, within: 0, between: 0, minutes: 0 });
    return {
      v: 2,
      ring: [],
      traffic: { mean: 0, dispersion: 1, minutes: 0 },
      errors: { errors: 0, count: 0, minutes: 0 },
      anomalies: { anomalies: 0, count: 0, minutes: 0 },
      latency: gauss(),
      payload: gauss(),
      frozen: { traffic: 0, errors: 0, latency: 0, payload: 0, anomalies: 0 },
      emptyRun: 0,
      gapFrom: null,
    };
  }

  /** Restores from `toJSON()`; throws on a state of another format (callers start afresh). */
  static fromJSON(json: unknown, options: SignalOptions = DEFAULT_SIGNAL_OPTIONS): MinuteSignals {
    const s = json as MinuteSignalsState;
    if (!s || s.v !== 2 || !Array.isArray(s.ring)) throw new Error('not a minute-signals state (v2)');
    return new MinuteSignals(options, s);
  }

  toJSON(): MinuteSignalsState {
    return this.s;
  }

  /** Consecutive empty minutes fed so far (the caller bounds long gaps with it). */
  get emptyRun(): number {
    return this.s.emptyRun;
  }

  /**
   * Marks the minutes from `minuteMs` on as a gap (not fed): windows must not span it; references
   * are kept for when the service comes back. Returns where the gap started (an open gap goes on).
   */
  openGap(minuteMs: number): number {
    this.s.ring = [];
    this.s.gapFrom ??= minuteMs;
    return this.s.gapFrom;
  }

  /**
   * Feeds the next minute (minutes are consecutive, oldest first) and returns the signals that are
   * anomalous at it. `minuteMs` is the minute's start, epoch ms.
   */
  update(minuteMs: number, m: MinuteStats): SignalFinding[] {
    const s = this.s;
    s.ring.push(FIELDS.map((f) => m[f]));
    // The minute leaving the test windows is the one the references learn from: a change is tested
    // for 20 minutes before it can teach the baseline anything (a guard band), so the first minutes of
    // an error burst or a slow ramp do not lower their own significance.
    const leaving = s.ring.length > RING ? s.ring.shift()! : null;
    s.emptyRun = m.count > 0 ? 0 : s.emptyRun + 1;
    if (m.count > 0) s.gapFrom = null;

    this.computeWindows(minuteMs);
    const findings: SignalFinding[] = [];
    const judge = (finding: SignalFinding | null) => {
      if (!finding) return;
      findings.push(finding);
      (s.lastFinding ??= {})[finding.signal] = minuteMs;
    };
    if (s.traffic.minutes >= WARMUP) judge(this.datedTraffic(this.testTraffic()));
    if (s.errors.minutes >= GUARDED_WARMUP) judge(this.testErrors());
    if (s.anomalies.minutes >= GUARDED_WARMUP) judge(this.testAnomalies());
    if (s.latency.minutes >= GUARDED_WARMUP) judge(this.testGauss('latency', minuteMs));
    if (s.payload.minutes >= GUARDED_WARMUP) judge(this.testGauss('payload', minuteMs));
    // Traffic learns the minute at once: a drop is found in its first minutes, and a reference that
    // lagged 20 minutes behind the daily cycle would see every evening's decline as a drop.
    this.learn(minuteMs, m, ['traffic'], 0);
    if (leaving) this.learn(minuteMs, Object.fromEntries(FIELDS.map((f, j) => [f, leaving[j] ?? 0])) as unknown as MinuteStats, ['errors', 'anomalies', 'latency', 'payload'], RING, minuteMs - RING * 60_000);
    return findings;
  }

  /**
   * Teaches `signals`' references a minute — unless the signal had a finding in the last
   * `guardMinutes` (frozen: an incident does not become its own baseline); a change that lasts
   * MAX_FROZEN minutes is learnt from then on as the new level (the spreads still only from normal minutes).
   */
  private learn(now: number, m: MinuteStats, signals: SignalName[], guardMinutes: number, minuteMs = now): void {
    const s = this.s;
    const learn = (signal: SignalName, apply: (levelOnly: boolean) => void) => {
      if (!signals.includes(signal)) return;
      const last = s.lastFinding?.[signal];
      const anomalous = last !== undefined && now - last <= guardMinutes * 60_000;
      if (anomalous) {
        if (s.frozen[signal] < MAX_FROZEN) {
          s.frozen[signal]++;
          return;
        }
      } else s.frozen[signal] = 0;
      apply(anomalous);
    };
    learn('traffic', (levelOnly) => this.learnTraffic(m.count, levelOnly));
    if (m.count > 0) {
      learn('errors', () => {
        s.errors.errors = s.errors.errors * DECAY + m.errors;
        s.errors.count = s.errors.count * DECAY + m.count;
        s.errors.minutes++;
      });
      learn('anomalies', () => {
        s.anomalies.anomalies = s.anomalies.anomalies * DECAY + m.anomalies;
        s.anomalies.count = s.anomalies.count * DECAY + m.count;
        s.anomalies.minutes++;
      });
    }
    // Minutes from before a rebase (see testGauss) are not learnt: the reference has taken the new level.
    const rebased = (signal: 'latency' | 'payload') => minuteMs <= (s.rebasedAt?.[signal] ?? -Infinity);
    if (m.latN > 0 && !rebased('latency')) learn('latency', (levelOnly) => learnGauss(s.latency, m.latN, m.latLogSum, m.latLogSq, levelOnly));
    if (m.bytesN > 0 && !rebased('payload')) learn('payload', (levelOnly) => learnGauss(s.payload, m.bytesN, m.bytesLogSum, m.bytesLogSq, levelOnly));
  }

  /** Sums of the last w minutes for every window w (computed once per minute, newest minute backwards). */
  private windows: ({ sums: MinuteStats; since: number; minutes: number } | null)[] = [];

  private computeWindows(minuteMs: number): void {
    const ring = this.s.ring;
    const acc = Float64Array.from(COMBINE, (c) => (c === 'max' ? -Infinity : c === 'min' ? Infinity : 0));
    this.windows = [];
    let taken = 0;
    for (const w of WINDOWS) {
      if (ring.length < w) {
        this.windows.push(null);
        continue;
      }
      for (; taken < w; taken++) {
        const row = ring[ring.length - 1 - taken];
        for (let j = 0; j < FIELDS.length; j++) {
          const v = row[j] ?? 0;
          if (COMBINE[j] === 'sum') acc[j] += v;
          else if ((row[COUNTED_BY[j]] ?? 0) > 0) acc[j] = COMBINE[j] === 'max' ? Math.max(acc[j], v) : Math.min(acc[j], v);
        }
      }
      const sums = {} as MinuteStats;
      FIELDS.forEach((f, j) => (sums[f] = acc[j]));
      this.windows.push({ sums, since: minuteMs - (w - 1) * 60_000, minutes: w });
    }
  }

  private window(w: number): { sums: MinuteStats; since: number; minutes: number } | null {
    return this.windows[WINDOWS.indexOf(w)] ?? null;
  }

  private testTraffic() {
    const t = this.s.traffic;
    let best: SignalFinding | null = null;
    const phi = Math.max(1, t.dispersion);
    for (const w of WINDOWS) {
      const win = this.window(w);
      if (!win) break;
      const observed = win.sums.count;
      const expected = t.mean * w;
      if (expected <= 0) continue;
      const ratio = observed / expected;
      // Quasi-Poisson: counts scaled by the dispersion keep the test's variance honest for bursty traffic.
      // The exact tail is only worth computing for a change large enough to matter.
      const down = ratio <= EFFECT.trafficDrop ? logPoissonLower(observed / phi, expected / phi) : 0;
      const up = ratio >= EFFECT.trafficSurge ? logPoissonUpper(observed / phi, expected / phi) : 0;
      if (down < Math.log(this.options.alpha)) {
        best = pick(best, {
          signal: 'traffic', metric: SIGNALS.traffic, since: win.since, windowMinutes: w, value: observed / w, expected: t.mean,
          ratio, direction: 'down', logP: down, severity: ratio <= 0.1 ? 'critical' : 'warning',
          summary: observed === 0
            ? `no requests for ${w} min (expected ${round(t.mean, 1)}/min)`
            : `requests fell to ${round(observed / w, 1)}/min over ${w} min, ${round(ratio * 100, 0)}% of the expected ${round(t.mean, 1)}/min`,
        });
      } else if (up < Math.log(this.options.alpha)) {
        best = pick(best, {
          signal: 'traffic', metric: SIGNALS.traffic, since: win.since, windowMinutes: w, value: observed / w, expected: t.mean,
          ratio, direction: 'up', logP: up, severity: ratio >= 10 ? 'critical' : 'warning',
          summary: `requests rose to ${round(observed / w, 1)}/min over ${w} min, ×${round(ratio, 1)} the expected ${round(t.mean, 1)}/min`,
        });
      }
    }
    return best;
  }

  /**
   * Dates a traffic finding by the first minute of the trailing run of minutes that are themselves
   * fallen (≤ half the expected count) or surged (≥ 3×), when that run is shorter than the window: a
   * window can reach back into normal minutes that only happened to be quiet, and the incident's start
   * ("since when") would then precede the outage by minutes.
   */
  private datedTraffic(f: SignalFinding | null): SignalFinding | null {
    if (!f) return f;
    const ring = this.s.ring;
    const expected = this.s.traffic.mean;
    let run = 0;
    for (let i = ring.length - 1; i >= 0 && run < f.windowMinutes; i--, run++) {
      const count = ring[i][0] ?? 0;
      if (f.direction === 'down' ? count > EFFECT.trafficDrop * expected : count < EFFECT.trafficSurge * expected) break;
    }
    return run > 0 && run < f.windowMinutes ? { ...f, since: f.since + (f.windowMinutes - run) * 60_000 } : f;
  }

  private testErrors() {
    const e = this.s.errors;
    // Reference share with a weak prior of 1% (100 requests' worth), so a service that never failed is not at 0.
    const p0 = (e.errors + 1) / (e.count + 100);
    let best: SignalFinding | null = null;
    for (const w of WINDOWS) {
      const win = this.window(w);
      if (!win) break;
      const { errors, count } = win.sums;
      if (!count) continue;
      const share = errors / count;
      if (errors < EFFECT.minErrors || share - p0 < EFFECT.errorPoints) continue;
      const logP = logBinomialUpper(errors, count, p0);
      if (logP < Math.log(this.options.alpha * GATED_ALPHA_FACTOR)) {
        best = pick(best, {
          signal: 'errors', metric: SIGNALS.errors, since: win.since, windowMinutes: w, value: share, expected: p0,
          ratio: share - p0, direction: 'up', logP, severity: share >= 0.2 ? 'critical' : 'warning',
          summary: `server errors at ${pct(share)} of ${count} requests over ${w} min (usual ${pct(p0)})`,
        });
      }
    }
    return best;
  }

  private testAnomalies() {
    const a = this.s.anomalies;
    const c = this.options.contamination;
    // The model's own rate (contamination), or the measured one when it runs higher.
    const p0 = Math.max(c, (a.anomalies + c * 200) / (a.count + 200));
    let best: SignalFinding | null = null;
    for (const w of WINDOWS) {
      const win = this.window(w);
      if (!win) break;
      const { anomalies, count } = win.sums;
      if (!count) continue;
      const share = anomalies / count;
      if (anomalies < EFFECT.minAnomalies || share < EFFECT.anomalyFactor * p0) continue;
      const logP = logBinomialUpper(anomalies, count, p0);
      // Not gated looser like errors: a model's anomaly rate drifts with the time of day and the data,
      // and this signal mostly restates the others.
      if (logP < Math.log(this.options.alpha)) {
        best = pick(best, {
          signal: 'anomalies', metric: SIGNALS.anomalies, since: win.since, windowMinutes: w, value: share, expected: p0,
          ratio: share / p0, direction: 'up', logP, severity: share >= 0.5 ? 'critical' : 'warning',
          summary: `${anomalies} of ${count} requests scored anomalous over ${w} min (${pct(share)}; the model's rate is ${pct(p0)})`,
        });
      }
    }
    return best;
  }

  private testGauss(signal: 'latency' | 'payload', minuteMs: number) {
    const g = this.s[signal];
    let rebase: number | null = null;
    const watch: Watch = signal === 'latency' ? this.options.latency : 'both';
    const factor = signal === 'latency' ? EFFECT.latency : EFFECT.payload;
    const [nKey, sumKey] = signal === 'latency' ? (['latN', 'latLogSum'] as const) : (['bytesN', 'bytesLogSum'] as const);
    let best: SignalFinding | null = null;
    const rebasedAt = this.s.rebasedAt?.[signal] ?? -Infinity;
    for (const w of WINDOWS) {
      const win = this.window(w);
      if (!win) break;
      // A window reaching back before a rebase would weigh the old level against the new reference.
      if (win.since <= rebasedAt) break;
      // The window's single most extreme request is left out (one request never makes a finding by itself).
      const n = win.sums[nKey] - 1;
      if (n < 1) continue;
      const extreme = signal === 'latency' ? [win.sums.latMax, win.sums.latMin] : [win.sums.bytesMax, win.sums.bytesMin];
      // Leaving out the largest of n + 1 requests lowers the mean of the rest by what the largest of
      // n + 1 normal values exceeds the mean by on average (σ · E[max]); that is added back, so the test
      // stays unbiased instead of needing a larger change at low traffic (20 requests: ≈ 0.1 σ).
      const corr = (Math.sqrt(g.within) * expectedNormalMax(n + 1)) / n;
      const meanUp = (win.sums[sumKey] - extreme[0]) / n + corr;
      const meanDown = (win.sums[sumKey] - extreme[1]) / n - corr;
      // Sampling noise of the window's requests, plus the minute-to-minute wobble averaged over its minutes.
      const sd = Math.sqrt(g.within / n + g.between / w + 1e-6);
      const up = logNormalUpper((meanUp - g.mu) / sd);
      const down = logNormalUpper((g.mu - meanDown) / sd);
      const mean = up <= down ? meanUp : meanDown;
      const value = Math.expm1(mean);
      const expected = Math.expm1(g.mu);
      const ratio = Math.exp(mean - g.mu);
      const unit = signal === 'latency' ? ' ms' : ' bytes';
      const what = signal === 'latency' ? 'latency' : 'response size';
      if (watch !== 'down' && up < Math.log(windowAlpha(this.options.alpha, w)) && ratio >= factor) {
        best = pick(best, {
          signal, metric: SIGNALS[signal], since: win.since, windowMinutes: w, value, expected, ratio, direction: 'up', logP: up,
          severity: ratio >= (signal === 'latency' ? 3 : 10) ? 'critical' : 'warning',
          summary: `typical ${what} ${round(value)}${unit} over ${w} min, ×${round(ratio, 1)} the usual ${round(expected)}${unit}`,
        });
      } else if (watch !== 'up' && down < Math.log(windowAlpha(this.options.alpha, w)) && ratio <= 1 / factor) {
        best = pick(best, {
          signal, metric: SIGNALS[signal], since: win.since, windowMinutes: w, value, expected, ratio, direction: 'down', logP: down,
          severity: ratio <= (signal === 'latency' ? 1 / 3 : 0.1) ? 'critical' : 'warning',
          summary: `typical ${what} ${round(value)}${unit} over ${w} min, ${round(ratio * 100, 0)}% of the usual ${round(expected)}${unit}`,
        });
      }
      // A lasting change (5+ minutes) the way this signal is not watched — latency falling under
      // ALERT_DIRECTION=slower: a faster deploy, the end of a degradation — is no incident, and the
      // reference takes it at once instead of over hours of a 60-minute half-life (during which it would
      // hide a new slowdown and fill the spreads with its own lag). The longest such window sets the level.
      if (watch !== 'both' && w >= 5) {
        const unwatched = watch === 'up' ? down < Math.log(windowAlpha(this.options.alpha, w)) && ratio <= 1 / factor : up < Math.log(windowAlpha(this.options.alpha, w)) && ratio >= factor;
        if (unwatched) rebase = win.sums[sumKey] / win.sums[nKey];
      }
    }
    if (rebase !== null) {
      g.mu = rebase;
      g.restart = 5;
      (this.s.rebasedAt ??= {})[signal] = minuteMs;
    }
    return best;
  }

  /** Learns a minute's count; `level` only: the dispersion learns from normal minutes alone. */
  private learnTraffic(count: number, levelOnly: boolean): void {
    const t = this.s.traffic;
    // Running means (weight 1/k) until k reaches the half-life's weight, so early minutes settle quickly.
    const a = Math.max(1 / (t.minutes + 1), 1 - DECAY);
    const b = Math.max(1 / (t.minutes + 1), 1 - SPREAD_DECAY);
    if (t.minutes === 0) t.mean = count;
    else {
      const resid = count - t.mean;
      // Dispersion (variance / mean) of minute counts: 1 for Poisson traffic, more for bursty traffic.
      if (t.mean > 0 && !levelOnly) t.dispersion = (1 - b) * t.dispersion + b * Math.min(50, (resid * resid) / t.mean);
      t.mean += a * resid;
    }
    t.minutes++;
  }
}

/**
 * Of two findings of one signal at a minute, the one of the shorter window: it dates the start of
 * the change most precisely (a long window fires first only for a slow change, and then dates it).
 */
function pick(a: SignalFinding | null, b: SignalFinding): SignalFinding {
  return !a || b.windowMinutes < a.windowMinutes ? b : a;
}

/**
 * Learns a minute of ln(1 + x) values. The spreads learn from normal minutes only (`levelOnly` while a
 * lasting change is being learnt as the new level), and a residual counts at most as 3 standard
 * deviations, so one incident cannot widen them into its own excuse for the next.
 */
function learnGauss(g: GaussState, n: number, sum: number, sq: number, levelOnly = false): void {
  const mean = sum / n;
  const within = n > 1 ? Math.max(0, (sq - (sum * sum) / n) / (n - 1)) : g.within;
  if (g.minutes === 0) {
    g.mu = mean;
    g.within = within;
    g.between = 0;
  } else {
    // Running means (weight 1/k) until k reaches the half-life's weight, so early minutes settle quickly.
    // After a rebase the level is a running mean again, of the minutes since (the rebase's window counting as 5).
    const a = Math.max(1 / ((g.restart ?? g.minutes) + 1), 1 - DECAY);
    if (g.restart !== undefined) g.restart = 1 / (g.restart + 2) > 1 - DECAY ? g.restart + 1 : undefined;
    const b = Math.max(1 / (g.minutes + 1), 1 - SPREAD_DECAY);
    const resid = mean - g.mu;
    if (!levelOnly) {
      const bound = 9 * (g.within / n + g.between) + 1e-4;
      g.between = (1 - b) * g.between + b * Math.max(0, Math.min(resid * resid, bound) - g.within / n);
      if (n > 1) g.within = (1 - b) * g.within + b * Math.min(within, 9 * g.within + 1e-4);
    }
    g.mu += a * resid;
  }
  g.minutes++;
}
