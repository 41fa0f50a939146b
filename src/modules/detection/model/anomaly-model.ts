import { averagePathLength, ContaminationOption, IsolationForest, IsolationForestJson } from '../core/isolation-forest';
import { Matrix } from '../core/matrix';
import { binIndex, binProportions, psiFromProportions, quantileBinEdges } from '../core/psi';
import { quantile } from '../core/stats';
import {
  DISPLAY_FIELDS,
  displayStats,
  DisplayStats,
  displayValues,
  FEATURE_NAMES,
  FEATURE_TO_DISPLAY,
  FeatureImputer,
  FeatureTransform,
  FeatureTransformJson,
  N_FEATURES,
} from '../features/event-features';
import { LogEvent } from '../features/log-event';

/** Training parameters of a tenant model. */
export interface ModelParams {
  nEstimators: number;
  maxSamples: number;
  contamination: ContaminationOption;
  seed: number;
  /** A service with at least this many training events gets its own sub-model. */
  minServiceRows: number;
}

export const DEFAULT_MODEL_PARAMS: ModelParams = {
  nEstimators: 100,
  maxSamples: 256,
  contamination: 0.01,
  seed: 42,
  minServiceRows: 500,
};

/**
 * Features watched for drift. The time of day is left out: a recent window covers a few minutes
 * of the day while the reference covers all of it, so it would always look drifted.
 */
export const DRIFT_FEATURES = [0, 1, 2] as const;

/** How far beyond the training range (as a share of its width) a value counts as novel. */
const NOVELTY_MARGIN = 0.1;

/**
 * The least tolerance of the log-scaled features (duration, bytes), in ln units: ln 2, i.e. a raw
 * value within a factor of two of the training range is never novel by itself. Without it a
 * feature that never varied in training (every response 1000 bytes) had a zero-width range and
 * 1001 bytes was as novel as a 5xx.
 */
const LOG_FEATURE_TOLERANCE = Math.LN2;

/**
 * Columns on a log scale (ln(1 + raw)), with the raw amount within which a value is never novel
 * either (a factor of two means nothing near 0: a service whose responses took 0 ms may take 5):
 * 10 ms of duration, 100 bytes. The status class is not one: it keeps the strict rule (a class
 * never seen in training is novel).
 */
const LOG_FEATURE_SLACK: ReadonlyMap<number, number> = new Map([
  [0, 10],
  [2, 100],
]);
/** The display field gathering the time-of-day features. */
const HOUR_OF_DAY_FIELD = DISPLAY_FIELDS.indexOf('hour_of_day');

export interface ScoreSummary {
  min: number;
  mean: number;
  p05: number;
  p50: number;
  p95: number;
}

export interface ExplanationFeature {
  name: string;
  value: number | null;
  p50: number | null;
  p99: number | null;
  /** Share of the isolation-path shortening this field caused, in [0, 1]. */
  contribution: number;
  missing?: boolean;
}

export interface Explanation {
  summary: string;
  features: ExplanationFeature[];
}

export interface EventScore {
  score: number;
  prediction: 1 | -1;
  /** Which sub-model scored it: a service name, or null for the tenant-wide one. */
  subModel: string | null;
  explanation?: Explanation;
}

interface SubModelJson {
  transform: FeatureTransformJson;
  /** Per feature: [min, max] of the training values. */
  range: [number, number][];
  forest: IsolationForestJson;
  imputer: number[];
  display: DisplayStats;
  drift: { edges: number[][]; proportions: number[][] };
  rows: number;
  scores: ScoreSummary;
  /** Feature columns no training event carried (absent in older models: none). */
  absent?: number[];
}

/** Version-1 serialised tenant model (stored in the registry and in models/<tenant>/model.json). */
export interface AnomalyModelJson {
  format: 'anomaly-detector-model';
  version: 1;
  features: string[];
  params: ModelParams;
  rows: number;
  timeFrom: string;
  timeTo: string;
  /** Every service present in the training data (with or without its own sub-model). */
  knownServices: string[];
  global: SubModelJson;
  services: Record<string, SubModelJson>;
}

const round = (x: number, digits = 4) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);

function summarise(scores: Float64Array): ScoreSummary {
  let sum = 0;
  let min = Infinity;
  for (const s of scores) {
    sum += s;
    if (s < min) min = s;
  }
  return {
    min: round(min),
    mean: round(sum / scores.length),
    p05: round(quantile(scores, 0.05)),
    p50: round(quantile(scores, 0.5)),
    p95: round(quantile(scores, 0.95)),
  };
}

class SubModel {
  /** Decision value of a row isolated by its very first split: what a novel value earns. */
  private readonly noveltyScore: number;
  /** Per feature, the values below and above which it is novel (see {@link novelFeatures}). */
  private readonly bounds: [number, number][];

  constructor(
    readonly transform: FeatureTransform,
    readonly range: [number, number][],
    readonly forest: IsolationForest,
    readonly imputer: FeatureImputer,
    readonly display: DisplayStats,
    readonly drift: { edges: Float64Array[]; proportions: Float64Array[] },
    readonly rows: number,
    readonly scores: ScoreSummary,
    /** Feature columns that no training event carried: the model has no range for them. */
    readonly absent: readonly number[],
  ) {
    this.noveltyScore = -(2 ** (-1 / averagePathLength(forest.maxSamples))) - forest.offset;
    this.bounds = range.map(([lo, hi], f) => {
      const margin = (hi - lo) * NOVELTY_MARGIN;
      const slack = LOG_FEATURE_SLACK.get(f);
      if (slack === undefined) return [lo - margin - 1e-9, hi + margin + 1e-9];
      const below = Math.min(lo - Math.max(margin, LOG_FEATURE_TOLERANCE), Math.log1p(Math.max(0, Math.expm1(lo) - slack)));
      const above = Math.max(hi + Math.max(margin, LOG_FEATURE_TOLERANCE), Math.log1p(Math.expm1(hi) + slack));
      return [below - 1e-9, above + 1e-9];
    });
  }

  static train(events: readonly LogEvent[], params: ModelParams, seed: number): SubModel {
    const transform = FeatureTransform.fit(events);
    const raw = transform.matrix(events);
    const absent: number[] = [];
    for (let c = 0; c < raw.cols; c++) {
      let seen = false;
      for (let r = 0; r < raw.rows && !seen; r++) seen = !Number.isNaN(raw.data[r * raw.cols + c]);
      if (!seen) absent.push(c);
    }
    const edges: Float64Array[] = [];
    const proportions: Float64Array[] = [];
    for (const c of DRIFT_FEATURES) {
      const present = column(raw, c).filter((v) => !Number.isNaN(v));
      const e = present.length ? quantileBinEdges(present, 10) : new Float64Array(0);
      edges.push(e);
      proportions.push(present.length ? binProportions(present, e) : Float64Array.of(1));
    }
    const imputer = FeatureImputer.fit(raw);
    imputer.apply(raw);
    const range = columnRanges(raw);
    const forest = IsolationForest.fit(raw, {
      nEstimators: params.nEstimators,
      maxSamples: Math.min(params.maxSamples, events.length),
      contamination: params.contamination,
      seed,
    });
    const scores = forest.decisionFunction(raw);
    return new SubModel(transform, range, forest, imputer, displayStats(events), { edges, proportions }, events.length, summarise(scores), absent);
  }

  static fromJSON(j: SubModelJson): SubModel {
    return new SubModel(
      FeatureTransform.fromJSON(j.transform),
      j.range,
      IsolationForest.fromJSON(j.forest),
      new FeatureImputer(j.imputer),
      j.display,
      { edges: j.drift.edges.map((e) => Float64Array.from(e)), proportions: j.drift.proportions.map((p) => Float64Array.from(p)) },
      j.rows,
      j.scores,
      j.absent ?? [],
    );
  }

  toJSON(): SubModelJson {
    return {
      transform: this.transform.toJSON(),
      range: this.range,
      forest: this.forest.toJSON(),
      imputer: [...this.imputer.medians],
      display: this.display,
      drift: { edges: this.drift.edges.map((e) => [...e]), proportions: this.drift.proportions.map((p) => [...p]) },
      rows: this.rows,
      scores: this.scores,
      absent: [...this.absent],
    };
  }

  /**
   * The sub-model's feature matrix of events: features it had no training values for are treated
   * as missing (a service trained without `bytes` is not surprised when they appear), then every
   * missing value takes the training median.
   */
  matrix(events: readonly LogEvent[]): Matrix {
    const m = this.transform.matrix(events);
    if (this.absent.length) for (let r = 0; r < m.rows; r++) for (const c of this.absent) m.data[r * m.cols + c] = NaN;
    this.imputer.apply(m);
    return m;
  }

  /** Whether the model has a training range for this display field (it carried values, and is in use). */
  private explains(field: number): boolean {
    if (field === HOUR_OF_DAY_FIELD) return this.transform.timeOfDay;
    for (let f = 0; f < N_FEATURES; f++) if (FEATURE_TO_DISPLAY[f] === field && !this.absent.includes(f)) return true;
    return false;
  }

  /**
   * Features on which a row lies outside everything seen in training: beyond the training range
   * by more than a tenth of its width, and for duration and bytes by more than a factor of two
   * ({@link LOG_FEATURE_TOLERANCE}) and a small raw amount ({@link LOG_FEATURE_SLACK}), so a
   * feature that never varied gets a relative tolerance;
   * the status class keeps the strict rule (a 5xx where training had none is novel). A forest
   * cannot tell such a row apart from the most extreme training row: its trees only split inside
   * the training range, so the score saturates (a 20x latency scores like a 3x one), and along a
   * feature that never varied (no 5xx in training) it sees nothing at all.
   */
  novelFeatures(row: ArrayLike<number>, offset = 0): number[] {
    const out: number[] = [];
    for (let f = 0; f < this.range.length; f++) if (this.isNovel(row[offset + f], f)) out.push(f);
    return out;
  }

  private isNovel(v: number, f: number): boolean {
    return v < this.bounds[f][0] || v > this.bounds[f][1];
  }

  /** Decision values: the forest's, capped at the first-split isolation score for novel rows. */
  scoreRows(m: Matrix): Float64Array {
    const scores = this.forest.decisionFunction(m);
    const cols = m.cols;
    for (let r = 0; r < m.rows; r++) {
      for (let f = 0; f < cols; f++) {
        if (this.isNovel(m.data[r * cols + f], f)) {
          scores[r] = Math.min(scores[r], this.noveltyScore);
          break;
        }
      }
    }
    return scores;
  }

  explain(event: LogEvent, row: Float64Array): Explanation {
    const novel = this.novelFeatures(row);
    const contrib = novel.length ? new Float64Array(N_FEATURES) : this.forest.featureContributions(row, { normalize: true });
    for (const f of novel) contrib[f] = 1 / novel.length;
    const byField = new Float64Array(DISPLAY_FIELDS.length);
    for (let f = 0; f < N_FEATURES; f++) byField[FEATURE_TO_DISPLAY[f]] += contrib[f];
    // Never name a field the model had no training range for.
    for (let i = 0; i < byField.length; i++) if (!this.explains(i)) byField[i] = 0;
    const values = displayValues(event);
    const features: ExplanationFeature[] = DISPLAY_FIELDS.map((name, i) => ({
      name,
      value: Number.isNaN(values[i]) ? null : round(values[i], 2),
      p50: Number.isNaN(this.display.p50[i]) ? null : round(this.display.p50[i], 2),
      p99: Number.isNaN(this.display.p99[i]) ? null : round(this.display.p99[i], 2),
      contribution: round(byField[i], 3),
      ...(Number.isNaN(values[i]) ? { missing: true } : {}),
    }))
      .filter((f) => f.contribution > 0)
      .sort((a, b) => b.contribution - a.contribution);
    return { summary: this.summary(features), features };
  }

  private summary(features: ExplanationFeature[]): string {
    const top = features[0];
    if (!top) return 'no single feature stands out; the combination is unusual';
    const i = DISPLAY_FIELDS.indexOf(top.name as (typeof DISPLAY_FIELDS)[number]);
    if (top.missing) return `${top.name} is missing`;
    const v = top.value as number;
    let text: string;
    if (top.name === 'status_code') {
      text =
        v >= 500
          ? `status_code ${v} is a server error (${round(this.display.errorShare * 100, 2)}% of training requests)`
          : `status_code ${v} is unusual (training p50 ${top.p50})`;
    } else if (top.name === 'hour_of_day') {
      text = `traffic at ${v.toFixed(1)}h UTC is unusual for this service`;
    } else if (top.p99 !== null && v > top.p99) {
      text = `${top.name} ${v} is above the training p99 (${top.p99})`;
    } else if (!Number.isNaN(this.display.p01[i]) && v < this.display.p01[i]) {
      text = `${top.name} ${v} is below the training p01 (${round(this.display.p01[i], 2)})`;
    } else {
      text = `${top.name} ${v} is unusual (training p50 ${top.p50}, p99 ${top.p99})`;
    }
    const second = features[1];
    return second && second.contribution >= 0.25 ? `${text}; also ${second.name} ${second.value ?? 'missing'}` : text;
  }
}

function columnRanges(m: Matrix): [number, number][] {
  const out: [number, number][] = [];
  for (let c = 0; c < m.cols; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let r = 0; r < m.rows; r++) {
      const v = m.data[r * m.cols + c];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    out.push([lo, hi]);
  }
  return out;
}

function column(m: Matrix, c: number): Float64Array {
  const out = new Float64Array(m.rows);
  for (let r = 0; r < m.rows; r++) out[r] = m.data[r * m.cols + c];
  return out;
}

/**
 * A tenant's model: one Isolation Forest per service with enough data, and one over all of the
 * tenant's events for the other services. Scores follow scikit-learn's decision_function
 * (negative = anomalous).
 */
export class AnomalyModel {
  private constructor(
    readonly params: ModelParams,
    readonly rows: number,
    readonly timeFrom: Date,
    readonly timeTo: Date,
    private readonly knownServices: ReadonlySet<string>,
    private readonly global: SubModel,
    private readonly services: Map<string, SubModel>,
  ) {
    this.subModels = [global, ...services.values()];
    this.subModelIndex = new Map([...services.keys()].map((service, i) => [service, i + 1]));
  }

  /** The sub-models by index: 0 the global one, then the services' in their map order. */
  private readonly subModels: readonly SubModel[];
  private readonly subModelIndex: ReadonlyMap<string, number>;

  /** @throws Error when `events` is empty. */
  static train(events: readonly LogEvent[], params: ModelParams = DEFAULT_MODEL_PARAMS): AnomalyModel {
    if (events.length === 0) throw new Error('cannot train a model on no events');
    const byService = new Map<string, LogEvent[]>();
    let from = Infinity;
    let to = -Infinity;
    for (const e of events) {
      const list = byService.get(e.service) ?? [];
      list.push(e);
      byService.set(e.service, list);
      const t = e.timestamp.getTime();
      if (t < from) from = t;
      if (t > to) to = t;
    }
    const global = SubModel.train(events, params, params.seed);
    const services = new Map<string, SubModel>();
    let i = 1;
    for (const [service, list] of [...byService.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      if (list.length >= params.minServiceRows) services.set(service, SubModel.train(list, params, params.seed + i++));
    }
    return new AnomalyModel(params, events.length, new Date(from), new Date(to), new Set(byService.keys()), global, services);
  }

  static fromJSON(json: unknown): AnomalyModel {
    const j = json as AnomalyModelJson;
    if (!j || j.format !== 'anomaly-detector-model') throw new Error('not an anomaly-detector model');
    if (j.version !== 1) throw new Error(`unsupported model version ${String(j.version)}`);
    if (JSON.stringify(j.features) !== JSON.stringify(FEATURE_NAMES)) {
      throw new Error(`model features ${j.features?.join(',')} differ from this build's ${FEATURE_NAMES.join(',')}`);
    }
    const services = new Map(Object.entries(j.services).map(([s, m]) => [s, SubModel.fromJSON(m)] as const));
    if (!Array.isArray(j.knownServices)) throw new Error('model lacks knownServices');
    return new AnomalyModel(
      j.params,
      j.rows,
      new Date(j.timeFrom),
      new Date(j.timeTo),
      new Set(j.knownServices),
      SubModel.fromJSON(j.global),
      services,
    );
  }

  toJSON(): AnomalyModelJson {
    return {
      format: 'anomaly-detector-model',
      version: 1,
      features: [...FEATURE_NAMES],
      params: this.params,
      rows: this.rows,
      timeFrom: this.timeFrom.toISOString(),
      timeTo: this.timeTo.toISOString(),
      knownServices: [...this.knownServices].sort(),
      global: this.global.toJSON(),
      services: Object.fromEntries([...this.services].map(([s, m]) => [s, m.toJSON()])),
    };
  }

  get serviceNames(): string[] {
    return [...this.services.keys()];
  }

  /** Training statistics for the registry: rows, time range, score distribution and offsets. */
  stats(): Record<string, unknown> {
    const sub = (m: SubModel) => ({
      rows: m.rows,
      offset: round(m.forest.offset, 6),
      scores: m.scores,
      timeOfDay: m.transform.timeOfDay,
      ...(m.absent.length ? { absentFeatures: m.absent.map((f) => FEATURE_NAMES[f]) } : {}),
    });
    return {
      rows: this.rows,
      timeFrom: this.timeFrom.toISOString(),
      timeTo: this.timeTo.toISOString(),
      global: sub(this.global),
      services: Object.fromEntries([...this.services].map(([s, m]) => [s, sub(m)])),
    };
  }

  hasServiceModel(service: string): boolean {
    return this.services.has(service);
  }

  /**
   * Whether the model has seen this service at all. A service it has never seen would be judged
   * against other services' normal, so it is scored by its own cold-start baseline instead.
   */
  knowsService(service: string): boolean {
    return this.knownServices.has(service);
  }

  /** Scores events in batches per sub-model; explains the anomalous ones. */
  score(events: readonly LogEvent[], options: { explain?: boolean } = {}): EventScore[] {
    const out: EventScore[] = new Array(events.length);
    const groups = new Map<string | null, number[]>();
    for (let i = 0; i < events.length; i++) {
      const key = this.services.has(events[i].service) ? events[i].service : null;
      const g = groups.get(key) ?? [];
      g.push(i);
      groups.set(key, g);
    }
    for (const [key, idx] of groups) {
      const sub = key === null ? this.global : this.services.get(key)!;
      const subset = idx.map((i) => events[i]);
      const m = sub.matrix(subset);
      const scores = sub.scoreRows(m);
      for (let k = 0; k < idx.length; k++) {
        const score = scores[k];
        const prediction = score < 0 ? -1 : 1;
        const result: EventScore = { score, prediction, subModel: key };
        if (prediction === -1 && options.explain !== false) {
          const row = m.data.subarray(k * N_FEATURES, (k + 1) * N_FEATURES);
          result.explanation = sub.explain(subset[k], row);
        }
        out[idx[k]] = result;
      }
    }
    return out;
  }

  /**
   * Population Stability Index per drift feature of recent events against the training reference,
   * each event compared with the sub-model that scores it (a mix of services is not drift), and
   * averaged over those sub-models weighted by their number of recent events. Sub-models with
   * fewer than 30 recent events are left out (too few to bin). The same figures as
   * {@link driftFromCounts} over the counts of these events' {@link driftBins}, which is how it
   * is computed.
   */
  drift(recent: readonly LogEvent[], threshold: number): { psi: Record<string, number>; alert: boolean } {
    const { sub, bins } = this.driftBins(recent);
    const counts = this.driftCounts();
    for (let i = 0; i < recent.length; i++) counts.add(sub[i], bins, i, 1);
    return this.driftFromCounts(counts, threshold);
  }

  /**
   * Each event's drift bins, for windows kept up to date one event at a time (DriftMonitor):
   * `sub[i]`, the index of the sub-model that scores event i, and `bins[i * DRIFT_FEATURES.length
   * + k]`, the bin of drift feature k in that sub-model's reference (the number of its bin edges
   * strictly below the value, {@link binIndex}), −1 when the event lacks the
   * feature or the reference has no bins for it.
   */
  driftBins(events: readonly LogEvent[]): { sub: Int32Array; bins: Int16Array } {
    const width = DRIFT_FEATURES.length;
    const sub = new Int32Array(events.length);
    const bins = new Int16Array(events.length * width).fill(-1);
    const groups = new Map<number, number[]>();
    for (let i = 0; i < events.length; i++) {
      const s = this.subModelIndex.get(events[i].service) ?? 0;
      sub[i] = s;
      const g = groups.get(s);
      if (g) g.push(i);
      else groups.set(s, [i]);
    }
    for (const [s, idx] of groups) {
      const model = this.subModels[s];
      const m = model.transform.matrix(idx.map((i) => events[i]));
      for (let k = 0; k < width; k++) {
        const edges = model.drift.edges[k];
        if (!edges.length) continue;
        const c = DRIFT_FEATURES[k];
        for (let r = 0; r < idx.length; r++) {
          const v = m.data[r * m.cols + c];
          if (!Number.isNaN(v)) bins[idx[r] * width + k] = binIndex(v, edges);
        }
      }
    }
    return { sub, bins };
  }

  /** Empty per-sub-model bin counts for {@link driftBins} of this model. */
  driftCounts(): DriftCounts {
    return new DriftCounts(this.subModels.map((m) => m.drift.edges.map((e) => e.length + 1)));
  }

  /** {@link drift}'s figures from bin counts (see {@link driftBins}). */
  driftFromCounts(counts: DriftCounts, threshold: number): { psi: Record<string, number>; alert: boolean } {
    const width = DRIFT_FEATURES.length;
    const sums = new Float64Array(width);
    const weights = new Float64Array(width);
    for (let s = 0; s < this.subModels.length; s++) {
      if (counts.events[s] < 30) continue;
      const ref = this.subModels[s].drift;
      for (let k = 0; k < width; k++) {
        const present = counts.present[s * width + k];
        if (present < 30 || !ref.edges[k].length) continue;
        const recent = counts.bins[s * width + k].map((n) => n / present);
        sums[k] += present * psiFromProportions(ref.proportions[k], recent);
        weights[k] += present;
      }
    }
    const psi: Record<string, number> = {};
    let alert = false;
    DRIFT_FEATURES.forEach((c, k) => {
      if (!weights[k]) return;
      const value = sums[k] / weights[k];
      psi[FEATURE_NAMES[c]] = round(value);
      if (value > threshold) alert = true;
    });
    return { psi, alert };
  }

}


/**
 * Counts of recent events' drift bins per sub-model of one {@link AnomalyModel}
 * ({@link AnomalyModel.driftCounts}): events per sub-model, and per sub-model and drift feature
 * the events that have it and their number in each bin. Adding and removing one event is a few
 * increments, so a sliding window stays current without re-binning it.
 */
export class DriftCounts {
  /** Events per sub-model. */
  readonly events: Float64Array;
  /** Events with the feature, per sub-model × drift feature. */
  readonly present: Float64Array;
  /** Events per bin, per sub-model × drift feature. */
  readonly bins: Float64Array[];

  constructor(binsPerFeature: readonly (readonly number[])[]) {
    const width = DRIFT_FEATURES.length;
    this.events = new Float64Array(binsPerFeature.length);
    this.present = new Float64Array(binsPerFeature.length * width);
    this.bins = binsPerFeature.flatMap((perFeature) => perFeature.map((n) => new Float64Array(n)));
  }

  /** Adds (`sign` 1) or removes (−1) event `i` of a {@link AnomalyModel.driftBins} result. */
  add(sub: number, bins: Int16Array, i: number, sign: 1 | -1): void {
    const width = DRIFT_FEATURES.length;
    this.events[sub] += sign;
    for (let k = 0; k < width; k++) {
      const b = bins[i * width + k];
      if (b < 0) continue;
      this.present[sub * width + k] += sign;
      this.bins[sub * width + k][b] += sign;
    }
  }
}
