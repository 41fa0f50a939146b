/**
 * Scores the incidents a running detector opened against labelled changes: was each labelled
 * incident paged, how late (event time), how many incidents were false, did a benign change page.
 * Pure: it needs only the labels and the incidents (as `GET /incidents` returns them), so the same
 * report serves `npm run evaluate` and any replay whose input carries labels.
 *
 * The acceptance it checks is issue 12's: every labelled incident paged within its deadline (5 min
 * for a spike, an error burst, a drop to zero or a payload change; 20 min for a slow degradation),
 * at most 0.5 false incidents per tenant-day, and no page for a faster deploy.
 */

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/** A labelled change (epoch ms; `end` exclusive). Benign changes must not page. */
export interface IncidentLabel {
  tenant: string;
  service: string;
  /** latency_spike | error_burst | slow_degradation | traffic_drop | payload_change | faster_deploy | traffic_increase | … */
  kind: string;
  start: number;
  end: number;
  benign: boolean;
}

/** An incident as `GET /incidents` lists it (ISO 8601 event times), with its tenant. */
export interface FoundIncident {
  id?: string;
  tenant: string;
  service: string;
  started_at: string;
  detected_at: string;
  /** null while open. */
  ended_at: string | null;
  severity: string;
  /** `first_at`: event time of the signal's first evidence in the incident (when it joined). */
  signals: { signal: string; first_at?: string }[];
}

export interface IncidentReportOptions {
  /** Tenants evaluated (a tenant without any incident still counts in the tenant-days). */
  tenants: string[];
  /** Evaluated period, epoch ms [from, to): labels and incidents starting outside it are left out. */
  from: number;
  to: number;
}

/**
 * How a label paged: `opened` an incident starting in its window; `new_signal` a signal joining,
 * inside the window, an incident open since before it (an escalation, which updates Slack); `none`.
 */
export type PagedVia = 'opened' | 'new_signal' | 'none';

/** How one labelled incident fared. Times in epoch ms, delays in ms. */
export interface LabelOutcome {
  label: IncidentLabel;
  paged: boolean;
  via: PagedVia;
  /** The incident that paged; when none did, an incident that was open all along (else null). */
  incident: FoundIncident | null;
  /** max(0, moment − label.start): the moment is detected_at for `opened`, the joining signal's
   *  first_at for `new_signal` (its evidence start: a lower bound); null when not paged. */
  delayMs: number | null;
  deadlineMs: number;
  inTime: boolean;
  /** An incident open since before the label took it in without a new signal: no page of its own. */
  silentlyJoined: boolean;
}

/** Per incident kind. Delays in ms. */
export interface KindSummary {
  kind: string;
  labels: number;
  paged: number;
  inTime: number;
  medianDelayMs: number | null;
  maxDelayMs: number | null;
  deadlineMs: number;
}

/** A benign change and the false incidents that started on its service within 60 min of it. */
export interface BenignOutcome {
  label: IncidentLabel;
  paged: boolean;
  incidents: FoundIncident[];
}

export interface AcceptanceCheck {
  name: string;
  pass: boolean;
  detail: string;
}

/** The structured report; {@link formatIncidentReport} renders it as text. */
export interface IncidentReport {
  period: { from: string; to: string; tenants: string[]; days: number; tenantDays: number };
  outcomes: LabelOutcome[];
  kinds: KindSummary[];
  falseIncidents: {
    count: number;
    perTenantDay: number;
    /** Counts per tenant and day (day 0 starts at `from`). */
    byTenantDay: { tenant: string; day: number; count: number }[];
    incidents: FoundIncident[];
  };
  benign: BenignOutcome[];
  acceptance: { pass: boolean; checks: AcceptanceCheck[] };
}

/** Event-time deadline per kind: a slow ramp may take longer to stand out than a step. */
export const PAGE_DEADLINE_MS: Readonly<Record<string, number>> = {
  latency_spike: 5 * MINUTE_MS,
  error_burst: 5 * MINUTE_MS,
  traffic_drop: 5 * MINUTE_MS,
  payload_change: 5 * MINUTE_MS,
  slow_degradation: 20 * MINUTE_MS,
};
/** Deadline of a kind not listed above. */
const DEFAULT_DEADLINE_MS = 5 * MINUTE_MS;
/** An incident may start a little before the labelled onset (its first evidence minute). */
const EARLY_MS = 2 * MINUTE_MS;
/** Recovery is judged after a cooldown: an incident ending up to this long after its label is not false. */
const RECOVERY_MS = 30 * MINUTE_MS;
/** A false incident this soon after a benign change's onset, on its service, is blamed on it. */
const BENIGN_BLAME_MS = 60 * MINUTE_MS;
/** Issue 12's ceiling on false incidents per tenant-day. */
export const MAX_FALSE_PER_TENANT_DAY = 0.5;

const time = (iso: string, what: string): number => {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) throw new RangeError(`${what} is not an ISO 8601 date-time: ${JSON.stringify(iso)}`);
  return t;
};

interface Span {
  inc: FoundIncident;
  start: number;
  detected: number;
  end: number;
}

const overlaps = (s: Span, from: number, to: number): boolean => s.start <= to && s.end >= from;

function medianOf(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Builds the report.
 *
 * - A labelled (non-benign) incident is paged when an incident of its tenant and service spans
 *   [started_at, ended_at or +∞) overlapping W = [label.start − 2 min, label.end] and either starts in
 *   W (opened: the moment is its detected_at) or, open since before W, gains a signal whose first_at
 *   is in W (an escalation: the moment is that first_at). An incident open all along that takes the
 *   label in without a new signal sent no page of its own: not paged (`silentlyJoined`). The delay
 *   is max(0, earliest moment − label.start), in time when within the kind's {@link PAGE_DEADLINE_MS}.
 * - A false incident is one (starting in the period) that overlaps no non-benign label window of its
 *   service, the window being [start − 2 min, end + 30 min] (recovery takes a cooldown).
 * - A benign change paged when a false incident started on its service within 60 min of its onset.
 *
 * @throws RangeError when `to <= from`, or an incident time is not an ISO 8601 date-time.
 */
export function buildIncidentReport(
  labels: IncidentLabel[],
  incidents: FoundIncident[],
  options: IncidentReportOptions,
): IncidentReport {
  const { from, to } = options;
  if (!(to > from)) throw new RangeError('the evaluated period must end after it starts');
  const tenants = [...new Set(options.tenants)];
  const days = (to - from) / DAY_MS;
  const tenantDays = tenants.length * days;
  const inTenants = new Set(tenants);

  const spans: Span[] = incidents
    .filter((i) => inTenants.has(i.tenant))
    .map((inc) => ({
      inc,
      start: time(inc.started_at, 'started_at'),
      detected: time(inc.detected_at, 'detected_at'),
      end: inc.ended_at === null ? Infinity : time(inc.ended_at, 'ended_at'),
    }))
    .filter((s) => s.start < to && s.end >= from)
    .sort((a, b) => a.start - b.start);
  const ofService = (tenant: string, service: string) =>
    spans.filter((s) => s.inc.tenant === tenant && s.inc.service === service);

  const inPeriod = labels.filter((l) => inTenants.has(l.tenant) && l.start >= from && l.start < to);
  const real = inPeriod.filter((l) => !l.benign);

  const outcomes: LabelOutcome[] = real.map((label) => {
    const deadlineMs = PAGE_DEADLINE_MS[label.kind] ?? DEFAULT_DEADLINE_MS;
    const lo = label.start - EARLY_MS;
    const candidates = ofService(label.tenant, label.service).filter((s) => overlaps(s, lo, label.end));
    let best: { span: Span; at: number; via: PagedVia } | null = null;
    for (const span of candidates) {
      let at: number;
      let via: PagedVia;
      if (span.start >= lo) {
        at = span.detected;
        via = 'opened';
      } else {
        const joined = span.inc.signals
          .map((x) => (x.first_at ? time(x.first_at, 'signals[].first_at') : NaN))
          .filter((t) => t >= lo && t <= label.end);
        if (!joined.length) continue;
        at = Math.min(...joined);
        via = 'new_signal';
      }
      if (!best || at < best.at) best = { span, at, via };
    }
    if (!best) {
      return {
        label,
        paged: false,
        via: 'none',
        incident: candidates[0]?.inc ?? null,
        delayMs: null,
        deadlineMs,
        inTime: false,
        silentlyJoined: candidates.length > 0,
      };
    }
    const delayMs = Math.max(0, best.at - label.start);
    return {
      label,
      paged: true,
      via: best.via,
      incident: best.span.inc,
      delayMs,
      deadlineMs,
      inTime: delayMs <= deadlineMs,
      silentlyJoined: false,
    };
  });

  const known = Object.keys(PAGE_DEADLINE_MS);
  const rank = (k: string) => (known.includes(k) ? known.indexOf(k) : known.length);
  const kindNames = [...new Set(real.map((l) => l.kind))].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const kinds: KindSummary[] = kindNames.map((kind) => {
    const mine = outcomes.filter((o) => o.label.kind === kind);
    const delays = mine.filter((o) => o.delayMs !== null).map((o) => o.delayMs!);
    return {
      kind,
      labels: mine.length,
      paged: mine.filter((o) => o.paged).length,
      inTime: mine.filter((o) => o.inTime).length,
      medianDelayMs: medianOf(delays),
      maxDelayMs: delays.length ? Math.max(...delays) : null,
      deadlineMs: PAGE_DEADLINE_MS[kind] ?? DEFAULT_DEADLINE_MS,
    };
  });

  const falseSpans = spans.filter(
    (s) =>
      s.start >= from &&
      !real.some(
        (l) =>
          l.tenant === s.inc.tenant &&
          l.service === s.inc.service &&
          overlaps(s, l.start - EARLY_MS, l.end + RECOVERY_MS),
      ),
  );
  const byTenantDay: { tenant: string; day: number; count: number }[] = [];
  for (const tenant of tenants) {
    for (let day = 0; day < Math.ceil(days); day++) {
      const count = falseSpans.filter(
        (s) => s.inc.tenant === tenant && Math.floor((s.start - from) / DAY_MS) === day,
      ).length;
      byTenantDay.push({ tenant, day, count });
    }
  }
  const perTenantDay = tenantDays > 0 ? falseSpans.length / tenantDays : 0;

  const benign: BenignOutcome[] = inPeriod
    .filter((l) => l.benign)
    .map((label) => {
      const blamed = falseSpans.filter(
        (s) =>
          s.inc.tenant === label.tenant &&
          s.inc.service === label.service &&
          s.start >= label.start &&
          s.start <= label.start + BENIGN_BLAME_MS,
      );
      return { label, paged: blamed.length > 0, incidents: blamed.map((s) => s.inc) };
    });

  const late = outcomes.filter((o) => !o.inTime);
  const deploys = benign.filter((b) => b.label.kind === 'faster_deploy');
  const checks: AcceptanceCheck[] = [
    {
      name: 'every labelled incident paged in time',
      pass: outcomes.length > 0 && late.length === 0,
      detail: outcomes.length
        ? `${outcomes.length - late.length}/${outcomes.length} in time` +
          (late.length
            ? `; missed or late: ${late.map((o) => `${o.label.tenant}/${o.label.service} ${o.label.kind}`).join(', ')}`
            : '')
        : 'no labelled incident in the period',
    },
    {
      name: `false incidents per tenant-day ≤ ${MAX_FALSE_PER_TENANT_DAY}`,
      pass: perTenantDay <= MAX_FALSE_PER_TENANT_DAY,
      detail: `${falseSpans.length} over ${round(tenantDays, 2)} tenant-days = ${round(perTenantDay, 2)}`,
    },
    {
      name: 'the faster deploy pages nobody',
      pass: deploys.every((b) => !b.paged),
      detail: deploys.length
        ? `${deploys.filter((b) => b.paged).length}/${deploys.length} faster deploys paged`
        : 'no faster deploy in the period',
    },
  ];

  return {
    period: { from: new Date(from).toISOString(), to: new Date(to).toISOString(), tenants, days, tenantDays },
    outcomes,
    kinds,
    falseIncidents: { count: falseSpans.length, perTenantDay, byTenantDay, incidents: falseSpans.map((s) => s.inc) },
    benign,
    acceptance: { pass: checks.every((c) => c.pass), checks },
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const minutes = (ms: number | null): string => (ms === null ? '-' : `${round(ms / MINUTE_MS, 1)} min`);
const hhmm = (t: number): string => new Date(t).toISOString().slice(5, 16).replace('T', ' ');

/** Renders rows as a plain-text table with left-aligned, space-padded columns. */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * The report as plain text for a terminal: one row per labelled incident (paged, delay, deadline,
 * the incident's signals), a summary per kind, false incidents per tenant-day, benign changes, and
 * PASS/FAIL per acceptance check. Times are UTC (MM-DD hh:mm).
 */
export function formatIncidentReport(r: IncidentReport): string {
  const out: string[] = [];
  out.push(
    `Evaluated ${r.period.from} .. ${r.period.to} (${round(r.period.days, 2)} days × ${r.period.tenants.length} tenants)`,
  );
  out.push('');
  out.push(
    table(
      ['tenant', 'service', 'kind', 'start', 'paged', 'delay', 'deadline', 'in time', 'severity', 'signals'],
      r.outcomes.map((o) => [
        o.label.tenant,
        o.label.service,
        o.label.kind,
        hhmm(o.label.start),
        o.paged ? (o.via === 'opened' ? 'yes' : 'signal') : o.silentlyJoined ? 'NO (open)' : 'NO',
        minutes(o.delayMs),
        minutes(o.deadlineMs),
        o.inTime ? 'yes' : 'NO',
        o.incident?.severity ?? '-',
        o.incident ? o.incident.signals.map((s) => s.signal).join(',') || '-' : '-',
      ]),
    ),
  );
  out.push(
    'paged: yes = an incident opened; signal = a new signal joined an open incident (delay from its evidence start); ' +
      'NO (open) = an incident open since before took it in without a new signal',
  );
  out.push('');
  out.push(
    table(
      ['kind', 'paged', 'in time', 'median delay', 'max delay', 'deadline'],
      r.kinds.map((k) => [
        k.kind,
        `${k.paged}/${k.labels}`,
        `${k.inTime}/${k.labels}`,
        minutes(k.medianDelayMs),
        minutes(k.maxDelayMs),
        minutes(k.deadlineMs),
      ]),
    ),
  );
  out.push('');
  out.push(`False incidents: ${r.falseIncidents.count} (${round(r.falseIncidents.perTenantDay, 2)} per tenant-day)`);
  out.push(
    table(
      ['tenant', 'day', 'false incidents'],
      r.falseIncidents.byTenantDay.map((d) => [d.tenant, String(d.day), String(d.count)]),
    ),
  );
  if (r.falseIncidents.incidents.length) {
    out.push('');
    out.push(
      table(
        ['tenant', 'service', 'started', 'ended', 'severity', 'signals'],
        r.falseIncidents.incidents.map((i) => [
          i.tenant,
          i.service,
          hhmm(Date.parse(i.started_at)),
          i.ended_at ? hhmm(Date.parse(i.ended_at)) : 'open',
          i.severity,
          i.signals.map((s) => s.signal).join(',') || '-',
        ]),
      ),
    );
  }
  if (r.benign.length) {
    out.push('');
    out.push(
      table(
        ['tenant', 'service', 'benign change', 'start', 'paged'],
        r.benign.map((b) => [
          b.label.tenant,
          b.label.service,
          b.label.kind,
          hhmm(b.label.start),
          b.paged ? `YES (${b.incidents.length})` : 'no',
        ]),
      ),
    );
  }
  out.push('');
  for (const c of r.acceptance.checks) out.push(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
  out.push(r.acceptance.pass ? 'RESULT: PASS' : 'RESULT: FAIL');
  return out.join('\n') + '\n';
}
