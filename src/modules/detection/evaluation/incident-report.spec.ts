import { FoundIncident, IncidentLabel, buildIncidentReport, formatIncidentReport } from './incident-report';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const FROM = Date.UTC(2026, 10, 28, 0, 0, 0);
const TO = FROM + 2 * DAY;
const at = (minutes: number) => FROM + minutes * MIN;
const iso = (minutes: number) => new Date(at(minutes)).toISOString();

const label = (o: Partial<IncidentLabel> & Pick<IncidentLabel, 'kind' | 'start' | 'end'>): IncidentLabel => ({
  tenant: 'eval-a',
  service: 'checkout',
  benign: false,
  ...o,
});

let seq = 0;
const incident = ({
  start,
  detected,
  end,
  ...o
}: Partial<FoundIncident> & { start: number; detected?: number; end?: number | null }): FoundIncident => ({
  id: `inc-${++seq}`,
  tenant: 'eval-a',
  service: 'checkout',
  severity: 'critical',
  signals: [{ signal: 'latency' }],
  started_at: iso(start),
  detected_at: iso(detected ?? start + 1),
  ended_at: end === null ? null : iso(end ?? start + 30),
  ...o,
});

describe(buildIncidentReport.name, () => {
  const opts = { tenants: ['eval-a', 'eval-b'], from: FROM, to: TO };

  it('should count a label as paged in time when an incident of its service starts in its window', () => {
    const spike = label({ kind: 'latency_spike', start: at(600), end: at(606) });
    const sut = buildIncidentReport([spike], [incident({ start: 600, detected: 603, end: 620 })], opts);
    expect(sut.outcomes[0]).toMatchObject({ paged: true, via: 'opened', delayMs: 3 * MIN, inTime: true });
    expect(sut.kinds).toEqual([
      expect.objectContaining({ kind: 'latency_spike', labels: 1, paged: 1, inTime: 1, medianDelayMs: 3 * MIN }),
    ]);
    expect(sut.falseIncidents.count).toBe(0);
  });

  it('should be late past the deadline: 5 min for a spike, 20 min for a slow degradation', () => {
    const spike = label({ kind: 'latency_spike', start: at(600), end: at(606) });
    const slow = label({ kind: 'slow_degradation', service: 'search', start: at(700), end: at(1440) });
    const sut = buildIncidentReport(
      [spike, slow],
      [incident({ start: 601, detected: 606 }), incident({ service: 'search', start: 712, detected: 718, end: null })],
      opts,
    );
    expect(sut.outcomes.map((o) => [o.label.kind, o.delayMs, o.inTime])).toEqual([
      ['latency_spike', 6 * MIN, false],
      ['slow_degradation', 18 * MIN, true],
    ]);
    expect(sut.acceptance.checks[0]).toMatchObject({ pass: false });
    expect(sut.acceptance.pass).toBe(false);
  });

  it('should not page a label from an incident of another service or tenant, or one that ended before it', () => {
    const burst = label({ kind: 'error_burst', start: at(600), end: at(604) });
    const sut = buildIncidentReport(
      [burst],
      [
        incident({ service: 'search', start: 600 }),
        incident({ tenant: 'eval-b', start: 600 }),
        incident({ start: 500, end: 597 }),
      ],
      opts,
    );
    expect(sut.outcomes[0]).toMatchObject({ paged: false, delayMs: null, inTime: false });
    expect(sut.falseIncidents.count).toBe(3);
  });

  it('should accept an incident starting up to 2 min early, with no negative delay', () => {
    const drop = label({ kind: 'traffic_drop', start: at(600), end: at(620) });
    const sut = buildIncidentReport([drop], [incident({ start: 598, detected: 599 })], opts);
    expect(sut.outcomes[0]).toMatchObject({ paged: true, via: 'opened', delayMs: 0, inTime: true });
  });

  it('should not count an incident open all along that takes the label in silently', () => {
    const payload = label({ kind: 'payload_change', start: at(600), end: at(610) });
    const sut = buildIncidentReport([payload], [incident({ start: 400, detected: 401, end: null })], opts);
    expect(sut.outcomes[0]).toMatchObject({ paged: false, via: 'none', delayMs: null, silentlyJoined: true });
    expect(sut.outcomes[0].incident?.started_at).toBe(iso(400));
    expect(formatIncidentReport(sut)).toContain('NO (open)');
  });

  it('should count a new signal joining an open incident in the window as a page from its first evidence', () => {
    const payload = label({ kind: 'payload_change', start: at(600), end: at(610) });
    const open = incident({
      start: 400,
      detected: 401,
      end: null,
      signals: [
        { signal: 'traffic', first_at: iso(400) },
        { signal: 'payload', first_at: iso(603) },
      ],
    });
    const sut = buildIncidentReport([payload], [open], opts);
    expect(sut.outcomes[0]).toMatchObject({ paged: true, via: 'new_signal', delayMs: 3 * MIN, inTime: true });
    expect(formatIncidentReport(sut)).toMatch(/payload_change\s+11-28 10:00\s+signal\s+3 min/);
  });

  it('should take the earliest page when an incident opens and another escalates', () => {
    const spike = label({ kind: 'latency_spike', start: at(600), end: at(606) });
    const open = incident({ start: 300, end: null, signals: [{ signal: 'latency', first_at: iso(604) }] });
    const sut = buildIncidentReport([spike], [open, incident({ start: 600, detected: 602 })], opts);
    expect(sut.outcomes[0]).toMatchObject({ via: 'opened', delayMs: 2 * MIN });
  });

  it('should count false incidents per tenant-day, sparing 30 min of recovery after a label', () => {
    const burst = label({ kind: 'error_burst', start: at(600), end: at(604) });
    const sut = buildIncidentReport(
      [burst],
      [
        incident({ start: 600 }),
        incident({ start: 630, detected: 631 }), // within the 30 min of recovery: not false
        incident({ start: 700 }), // false, day 0
        incident({ tenant: 'eval-b', start: 1500 }), // false, day 1
        incident({ tenant: 'eval-c', start: 900 }), // not an evaluated tenant
        incident({ start: -200, end: -100 }), // before the period
      ],
      opts,
    );
    expect(sut.falseIncidents.count).toBe(2);
    expect(sut.falseIncidents.perTenantDay).toBe(0.5);
    expect(sut.falseIncidents.byTenantDay).toEqual([
      { tenant: 'eval-a', day: 0, count: 1 },
      { tenant: 'eval-a', day: 1, count: 0 },
      { tenant: 'eval-b', day: 0, count: 0 },
      { tenant: 'eval-b', day: 1, count: 1 },
    ]);
    expect(sut.acceptance.checks[1]).toMatchObject({ pass: true });
  });

  it('should fail the false-incident check above 0.5 per tenant-day', () => {
    const sut = buildIncidentReport(
      [],
      [0, 100, 200].map((m) => incident({ start: m * 3 })),
      { ...opts, tenants: ['eval-a'] },
    );
    expect(sut.falseIncidents.perTenantDay).toBe(1.5);
    expect(sut.acceptance.checks[1]).toMatchObject({ pass: false });
  });

  it('should blame a false incident within 60 min of a faster deploy on it and fail', () => {
    const deploy = label({ kind: 'faster_deploy', service: 'search', start: at(300), end: TO, benign: true });
    const more = label({ kind: 'traffic_increase', service: 'auth', start: at(900), end: TO, benign: true });
    const spike = label({ kind: 'latency_spike', start: at(600), end: at(606) });
    const sut = buildIncidentReport(
      [deploy, more, spike],
      [
        incident({ service: 'search', start: 330, signals: [{ signal: 'latency' }] }),
        incident({ service: 'auth', start: 1000 }),
        incident({ start: 601, detected: 603 }),
      ],
      opts,
    );
    expect(sut.benign.map((b) => [b.label.kind, b.paged])).toEqual([
      ['faster_deploy', true],
      ['traffic_increase', false],
    ]);
    expect(sut.acceptance.checks.map((c) => c.pass)).toEqual([true, true, false]);
    expect(formatIncidentReport(sut)).toContain('FAIL  the faster deploy pages nobody');
  });

  it('should pass when everything is paged in time and nothing else pages', () => {
    const labels = [
      label({ kind: 'latency_spike', start: at(200), end: at(206) }),
      label({ kind: 'slow_degradation', service: 'search', start: at(300), end: at(1440) }),
      label({ kind: 'faster_deploy', service: 'auth', start: at(400), end: TO, benign: true }),
    ];
    const sut = buildIncidentReport(
      labels,
      [incident({ start: 200, detected: 202 }), incident({ service: 'search', start: 305, detected: 310, end: 1450 })],
      opts,
    );
    expect(sut.acceptance.pass).toBe(true);
    const text = formatIncidentReport(sut);
    expect(text).toContain('RESULT: PASS');
    expect(text).toMatch(/latency_spike\s+1\/1\s+1\/1\s+2 min/);
  });

  it('should leave out labels before the period and reject a bad period or a bad time', () => {
    const early = label({ kind: 'latency_spike', start: at(-100), end: at(-94) });
    expect(buildIncidentReport([early], [], opts).outcomes).toHaveLength(0);
    expect(buildIncidentReport([early], [], opts).acceptance.checks[0]).toMatchObject({
      pass: false,
      detail: 'no labelled incident in the period',
    });
    expect(() => buildIncidentReport([], [], { ...opts, to: FROM })).toThrow(RangeError);
    expect(() => buildIncidentReport([], [{ ...incident({ start: 10 }), started_at: 'yesterday' }], opts)).toThrow(
      /started_at/,
    );
  });
});
