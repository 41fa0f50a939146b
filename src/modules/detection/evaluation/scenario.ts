import { Rng } from '../core/rng';

/**
 * Seeded evaluation scenarios: N days of multi-tenant request logs with labelled incidents of the
 * five kinds of issue 12 and labelled benign changes, for `npm run evaluate` (and any replay that
 * carries labels). Pure: no I/O, no clock (the caller passes `end`), same options → same events.
 *
 * Traffic model (per service, per minute): Poisson request counts around `rate` shaped by a daily
 * cycle (×0.5 at the tenant's quiet hour .. ×1.5 at its peak); lognormal latency (per-service median
 * 50–400 ms, sigma 0.3–0.6) that is up to 20 % higher at the peak; ~0.5 % server errors, ~1 % 404s,
 * ~0.5 % single slow outliers ×5..×10; lognormal response sizes.
 */

/** Incident kinds a detector must page on (issue 12, "What a new user sees today"). */
export const INCIDENT_KINDS = [
  'latency_spike',
  'error_burst',
  'slow_degradation',
  'traffic_drop',
  'payload_change',
] as const;
export type IncidentKind = (typeof INCIDENT_KINDS)[number];

/** Benign changes that must not page (the daily cycle is in every minute and needs no label). */
export const BENIGN_KINDS = ['faster_deploy', 'traffic_increase'] as const;
export type BenignKind = (typeof BENIGN_KINDS)[number];

/** One labelled change of one service; times are epoch ms, `start` inclusive, `end` exclusive. */
export interface ScenarioLabel {
  tenant: string;
  service: string;
  kind: IncidentKind | BenignKind;
  start: number;
  /** End of the change; for slow_degradation the end of the period it stays degraded (end of that
   *  day); for the permanent benign changes the end of the data. */
  end: number;
  benign: boolean;
}

/** An event in the ingest shape (SPEC §4) plus the tenant it belongs to (as in training datasets). */
export interface ScenarioEvent {
  tenant: string;
  timestamp: string;
  service: string;
  http: { request: { method: string; path: string }; response: { status_code: number; bytes: number } };
  performance: { duration_ms: number };
}

export interface ScenarioOptions {
  /** Number of tenants (named eval-a, eval-b, …) or their names. Default 2. */
  tenants?: number | string[];
  /** Services per tenant. Default 3. */
  servicesPerTenant?: number;
  /** Days of data. Default 2. */
  days?: number;
  /** Mean requests per minute per service over a day (before benign traffic increases). Default 10. */
  rate?: number;
  /** Integer seed. Default 1. */
  seed?: number;
  /** End of the data (epoch ms or Date), rounded down to the minute. Required: the scenario reads no clock. */
  end: number | Date;
  /** First day (0-based) with incidents and benign changes; 1 keeps day 0 clean for training. Default 0. */
  firstIncidentDay?: number;
}

/** A service's normal behaviour. */
export interface ScenarioService {
  tenant: string;
  name: string;
  method: string;
  paths: string[];
  /** Median latency, ms, at the daily mean. */
  medianMs: number;
  /** Sigma of ln(latency). */
  sigma: number;
  /** Median response size, bytes. */
  medianBytes: number;
}

/** A built scenario: its services and labels are fixed; its events are generated on demand. */
export interface Scenario {
  tenants: string[];
  services: ScenarioService[];
  labels: ScenarioLabel[];
  /** First minute of the data and end of the data (exclusive), epoch ms. */
  start: number;
  end: number;
  days: number;
  rate: number;
  seed: number;
  firstIncidentDay: number;
  /**
   * The events in time order (all tenants merged, or one tenant's when `tenant` is given: the same
   * events as the merged stream filtered, since every service draws from its own random stream).
   * Each call starts again from the first minute.
   * @throws RangeError for a tenant that is not in the scenario.
   */
  events(tenant?: string): Generator<ScenarioEvent>;
  /** How many events {@link events} yields (generates them once without keeping them). */
  countEvents(tenant?: string): number;
}

export const MINUTE_MS = 60_000;
export const DAY_MS = 24 * 60 * MINUTE_MS;

/** Incident durations in minutes (slow_degradation: the ramp; it then stays until the end of the day). */
export const INCIDENT_MINUTES: Record<IncidentKind, number> = {
  latency_spike: 6,
  error_burst: 4,
  slow_degradation: 90,
  traffic_drop: 20,
  payload_change: 10,
};

const SPIKE_FACTOR = 6;
const BURST_ERROR_SHARE = 0.35;
const DEGRADATION_STEP = 1.03;
const PAYLOAD_FACTOR = 20;
const FASTER_DEPLOY_FACTOR = 0.6;
const TRAFFIC_INCREASE_FACTOR = 1.6;
const ERROR_SHARE = 0.005;
const NOT_FOUND_SHARE = 0.01;
const OUTLIER_SHARE = 0.005;
/** Nothing starts in the first hours of a day nor ends in the last hours of a day (or of the data). */
const QUIET_HEAD_MS = 3 * 60 * MINUTE_MS;
const QUIET_TAIL_MS = 2 * 60 * MINUTE_MS;
/** Gap kept between two changes of one service, so the recovery of one is not the onset of the next. */
const SPACING_MS = 60 * MINUTE_MS;

const SERVICE_NAMES = [
  'checkout',
  'search',
  'catalog',
  'auth',
  'payments',
  'images',
  'orders',
  'profile',
  'inventory',
  'shipping',
];
const ROUTES: { method: string; paths: string[] }[] = [
  { method: 'GET', paths: ['/api/items', '/api/items/{id}', '/api/list'] },
  { method: 'POST', paths: ['/api/submit', '/api/batch'] },
  { method: 'GET', paths: ['/v1/query', '/v1/suggest'] },
  { method: 'PUT', paths: ['/api/update', '/api/sync'] },
];

/** A standard normal draw (Marsaglia's polar method; the second value of each pair is kept). */
class Normal {
  private spare: number | null = null;
  constructor(private readonly rng: Rng) {}
  next(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    for (;;) {
      const u = 2 * this.rng.nextDouble() - 1;
      const v = 2 * this.rng.nextDouble() - 1;
      const q = u * u + v * v;
      if (q > 0 && q < 1) {
        const f = Math.sqrt((-2 * Math.log(q)) / q);
        this.spare = v * f;
        return u * f;
      }
    }
  }
}

/** Poisson draw: Knuth's product method, on parts of mean ≤ 30 (a sum of Poissons is Poisson). */
function poissonDraw(rng: Rng, mean: number): number {
  let total = 0;
  let left = mean;
  while (left > 0) {
    const part = Math.min(left, 30);
    left -= part;
    const limit = Math.exp(-part);
    let p = rng.nextDouble();
    while (p > limit) {
      total++;
      p *= rng.nextDouble();
    }
  }
  return total;
}

/** A seed for a sub-stream, drawn from a parent stream (keeps all streams fixed by one seed). */
const childSeed = (rng: Rng): number => rng.nextUint32() * 2048 + rng.nextInt(2048);

function tenantNames(t: number | string[]): string[] {
  if (Array.isArray(t)) return t;
  return Array.from({ length: t }, (_, i) => `eval-${i < 26 ? String.fromCharCode(97 + i) : `t${i}`}`);
}

interface Reservation {
  service: string;
  from: number;
  to: number;
}

/**
 * Plans one tenant's changes of one day: the five incidents on random services, non-overlapping per
 * service (with {@link SPACING_MS} between them), all inside [day + 3 h, day end − 2 h] (a slow
 * degradation's ramp too; it then stays degraded until the day ends, so it blocks its service).
 */
function planDay(
  rng: Rng,
  tenant: string,
  services: string[],
  dayStart: number,
  dayEnd: number,
  taken: Reservation[],
): ScenarioLabel[] {
  const lo = dayStart + QUIET_HEAD_MS;
  const hi = dayEnd - QUIET_TAIL_MS;
  for (let attempt = 0; attempt < 200; attempt++) {
    const reserved: Reservation[] = [...taken];
    const labels: ScenarioLabel[] = [];
    let ok = true;
    for (const kind of INCIDENT_KINDS) {
      const span = INCIDENT_MINUTES[kind] * MINUTE_MS;
      const slots = Math.floor((hi - span - lo) / MINUTE_MS);
      let placed = false;
      for (let k = 0; k < 50 && !placed && slots > 0; k++) {
        const service = services[rng.nextInt(services.length)];
        const start = lo + rng.nextInt(slots) * MINUTE_MS;
        const end = kind === 'slow_degradation' ? dayEnd : start + span;
        if (reserved.some((r) => r.service === service && start < r.to + SPACING_MS && r.from < end + SPACING_MS))
          continue;
        reserved.push({ service, from: start, to: end });
        labels.push({ tenant, service, kind, start, end, benign: false });
        placed = true;
      }
      if (!placed) {
        ok = false;
        break;
      }
    }
    if (ok) {
      taken.push(...reserved.slice(taken.length));
      return labels;
    }
  }
  throw new RangeError(`cannot place the five incidents of a day on ${services.length} service(s) of tenant ${tenant}`);
}

/** Places one benign change on a random service and day, away from that service's incidents. */
function planBenign(
  rng: Rng,
  tenant: string,
  kind: BenignKind,
  services: string[],
  dayStarts: number[],
  dataEnd: number,
  taken: Reservation[],
): ScenarioLabel {
  for (let k = 0; k < 2000; k++) {
    const service = services[rng.nextInt(services.length)];
    const dayStart = dayStarts[rng.nextInt(dayStarts.length)];
    const lo = dayStart + QUIET_HEAD_MS;
    const slots = Math.floor((dayStart + DAY_MS - QUIET_TAIL_MS - lo) / MINUTE_MS);
    const start = lo + rng.nextInt(slots) * MINUTE_MS;
    // Permanent, but it is the onset that could page: keep the onset clear of incidents.
    if (taken.some((r) => r.service === service && start < r.to + SPACING_MS && r.from < start + SPACING_MS)) continue;
    taken.push({ service, from: start, to: start + SPACING_MS });
    return { tenant, service, kind, start, end: dataEnd, benign: true };
  }
  throw new RangeError(`cannot place the ${kind} of tenant ${tenant} clear of its incidents`);
}

/** Per-minute behaviour of one service, from its labels. */
interface ServiceState {
  profile: ScenarioService;
  rng: Rng;
  normal: Normal;
  /** Labels of this service (its incidents and benign changes). */
  labels: ScenarioLabel[];
  /** Daily cycle phase of the tenant: hour (UTC) of the peak. */
  peakHour: number;
}

function validate(
  o: ScenarioOptions,
): Required<Omit<ScenarioOptions, 'end' | 'tenants'>> & { end: number; tenants: string[] } {
  const tenants = tenantNames(o.tenants ?? 2);
  const servicesPerTenant = o.servicesPerTenant ?? 3;
  const days = o.days ?? 2;
  const rate = o.rate ?? 10;
  const seed = o.seed ?? 1;
  const firstIncidentDay = o.firstIncidentDay ?? 0;
  const endRaw = o.end instanceof Date ? o.end.getTime() : o.end;
  if (!tenants.length || tenants.length > 100) throw new RangeError('tenants must be 1..100');
  if (new Set(tenants).size !== tenants.length) throw new RangeError('tenant names must be distinct');
  if (!Number.isInteger(servicesPerTenant) || servicesPerTenant < 1 || servicesPerTenant > 50)
    throw new RangeError('servicesPerTenant must be an integer in 1..50');
  if (!Number.isInteger(days) || days < 1 || days > 60) throw new RangeError('days must be an integer in 1..60');
  if (!(rate > 0 && rate <= 10_000)) throw new RangeError('rate must be in (0, 10000] requests/min');
  if (!Number.isSafeInteger(seed)) throw new RangeError('seed must be a safe integer');
  if (!Number.isInteger(firstIncidentDay) || firstIncidentDay < 0 || firstIncidentDay > days)
    throw new RangeError('firstIncidentDay must be an integer in 0..days');
  if (!Number.isFinite(endRaw)) throw new RangeError('end must be a valid time');
  return {
    tenants,
    servicesPerTenant,
    days,
    rate,
    seed,
    firstIncidentDay,
    end: Math.floor(endRaw / MINUTE_MS) * MINUTE_MS,
  };
}

/**
 * Builds a scenario: per tenant `servicesPerTenant` services with their own latency and size
 * profile, and from day `firstIncidentDay` on, every day, one incident of each of the five kinds on
 * random services, plus (once per tenant, on a day ≥ `firstIncidentDay`) a faster deploy (a service
 * 40 % faster from then on) and a traffic increase (×1.6 from then on). Labels are sorted by start.
 *
 * Incidents: latency_spike latency ×6 for 6 min; error_burst 35 % of requests answer 5xx for 4 min;
 * slow_degradation latency ×1.03^k at minute k for 90 min, then staying ×1.03^90 until the day
 * ends; traffic_drop no requests at all for 20 min; payload_change response bytes ×20 for 10 min.
 *
 * @throws RangeError for options out of range (named in the message), or when the incidents of a
 *   day cannot be placed (one service cannot hold five spaced incidents and a degradation).
 */
export function buildScenario(options: ScenarioOptions): Scenario {
  const o = validate(options);
  const start = o.end - o.days * DAY_MS;
  const master = new Rng(o.seed);
  const services: ScenarioService[] = [];
  const labels: ScenarioLabel[] = [];
  const plans: { profile: ScenarioService; seed: number; labels: ScenarioLabel[]; peakHour: number }[] = [];
  const dayStarts = Array.from(
    { length: o.days - o.firstIncidentDay },
    (_, i) => start + (o.firstIncidentDay + i) * DAY_MS,
  );
  for (const tenant of o.tenants) {
    const rng = new Rng(childSeed(master));
    const peakHour = rng.uniform(0, 24);
    const names = [...SERVICE_NAMES];
    for (let i = names.length - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      [names[i], names[j]] = [names[j], names[i]];
    }
    const mine: ScenarioService[] = [];
    for (let i = 0; i < o.servicesPerTenant; i++) {
      const route = ROUTES[rng.nextInt(ROUTES.length)];
      mine.push({
        tenant,
        name: i < names.length ? names[i] : `service-${i}`,
        method: route.method,
        paths: route.paths,
        medianMs: Math.round(50 * Math.pow(8, rng.nextDouble())),
        sigma: Math.round(rng.uniform(0.3, 0.6) * 100) / 100,
        medianBytes: Math.round(500 * Math.pow(100, rng.nextDouble())),
      });
    }
    const serviceNames = mine.map((s) => s.name);
    const taken: Reservation[] = [];
    const tenantLabels: ScenarioLabel[] = [];
    for (const dayStart of dayStarts)
      tenantLabels.push(...planDay(rng, tenant, serviceNames, dayStart, dayStart + DAY_MS, taken));
    if (dayStarts.length) {
      for (const kind of BENIGN_KINDS)
        tenantLabels.push(planBenign(rng, tenant, kind, serviceNames, dayStarts, o.end, taken));
    }
    labels.push(...tenantLabels);
    for (const profile of mine) {
      plans.push({
        profile,
        seed: childSeed(rng),
        labels: tenantLabels.filter((l) => l.service === profile.name),
        peakHour,
      });
    }
    services.push(...mine);
  }
  labels.sort((a, b) => a.start - b.start || a.tenant.localeCompare(b.tenant) || a.service.localeCompare(b.service));

  // Each call starts every service's stream again from its seed, so every call yields the same events.
  const fresh = (tenant?: string): ServiceState[] => {
    if (tenant !== undefined && !o.tenants.includes(tenant))
      throw new RangeError(`tenant ${tenant} is not in the scenario`);
    return plans
      .filter((p) => tenant === undefined || p.profile.tenant === tenant)
      .map((p) => {
        const rng = new Rng(p.seed);
        return { profile: p.profile, labels: p.labels, peakHour: p.peakHour, rng, normal: new Normal(rng) };
      });
  };

  function* events(tenant?: string): Generator<ScenarioEvent> {
    const st = fresh(tenant);
    const minute: { ts: number; e: ScenarioEvent }[] = [];
    for (let t = start; t < o.end; t += MINUTE_MS) {
      minute.length = 0;
      for (const s of st) generateMinute(s, t, o.rate, minute);
      minute.sort((a, b) => a.ts - b.ts);
      for (const m of minute) yield m.e;
    }
  }

  return {
    tenants: o.tenants,
    services,
    labels,
    start,
    end: o.end,
    days: o.days,
    rate: o.rate,
    seed: o.seed,
    firstIncidentDay: o.firstIncidentDay,
    events,
    countEvents: (tenant?: string) => {
      let n = 0;
      for (const _ of events(tenant)) n++;
      return n;
    },
  };
}

/** Daily cycle in [0, 1]: 1 at the tenant's peak hour, 0 twelve hours later. */
function dailyPeak(t: number, peakHour: number): number {
  const hour = (t % DAY_MS) / (60 * MINUTE_MS);
  return 0.5 + 0.5 * Math.cos(((hour - peakHour) / 24) * 2 * Math.PI);
}

/** Appends the events of one service in the minute starting at `t`. */
function generateMinute(s: ServiceState, t: number, rate: number, out: { ts: number; e: ScenarioEvent }[]): void {
  const p = s.profile;
  const f = dailyPeak(t, s.peakHour);
  let traffic = rate * (0.5 + f);
  let latency = p.medianMs * (1 + 0.2 * f);
  let errorShare = ERROR_SHARE;
  let bytesFactor = 1;
  for (const l of s.labels) {
    if (t < l.start || t >= l.end) continue;
    switch (l.kind) {
      case 'latency_spike':
        latency *= SPIKE_FACTOR;
        break;
      case 'error_burst':
        errorShare = BURST_ERROR_SHARE;
        break;
      case 'slow_degradation':
        latency *= Math.pow(
          DEGRADATION_STEP,
          Math.min(INCIDENT_MINUTES.slow_degradation, Math.round((t - l.start) / MINUTE_MS)),
        );
        break;
      case 'traffic_drop':
        traffic = 0;
        break;
      case 'payload_change':
        bytesFactor = PAYLOAD_FACTOR;
        break;
      case 'faster_deploy':
        latency *= FASTER_DEPLOY_FACTOR;
        break;
      case 'traffic_increase':
        traffic *= TRAFFIC_INCREASE_FACTOR;
        break;
    }
  }
  const n = poissonDraw(s.rng, traffic);
  for (let k = 0; k < n; k++) {
    const ts = t + Math.floor(s.rng.nextDouble() * MINUTE_MS);
    let duration = latency * Math.exp(p.sigma * s.normal.next());
    if (s.rng.nextDouble() < OUTLIER_SHARE) duration *= s.rng.uniform(5, 10);
    const u = s.rng.nextDouble();
    // Server errors first, so a burst replaces successes and 404s alike.
    const status =
      u < errorShare ? [500, 502, 503, 504][s.rng.nextInt(4)] : u < errorShare + NOT_FOUND_SHARE ? 404 : 200;
    const bytes = Math.max(1, Math.round(p.medianBytes * bytesFactor * Math.exp(0.25 * s.normal.next())));
    out.push({
      ts,
      e: {
        tenant: p.tenant,
        timestamp: new Date(ts).toISOString(),
        service: p.name,
        http: {
          request: { method: p.method, path: p.paths[s.rng.nextInt(p.paths.length)] },
          response: { status_code: status, bytes },
        },
        performance: { duration_ms: Math.round(duration * 10) / 10 },
      },
    });
  }
}
