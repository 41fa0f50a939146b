import {
  BENIGN_KINDS,
  DAY_MS,
  INCIDENT_KINDS,
  INCIDENT_MINUTES,
  IncidentKind,
  MINUTE_MS,
  Scenario,
  ScenarioEvent,
  buildScenario,
} from './scenario';

const END = Date.UTC(2026, 10, 30, 12, 0, 0);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

describe(buildScenario.name, () => {
  let sut: Scenario;
  let all: ScenarioEvent[];

  beforeAll(() => {
    sut = buildScenario({ seed: 7, end: END + 42_123 });
    all = [...sut.events()];
  });

  describe('options', () => {
    it('should end at the given end rounded down to the minute and span the days', () => {
      expect(sut.end).toBe(END);
      expect(sut.start).toBe(END - 2 * DAY_MS);
      expect(sut.tenants).toEqual(['eval-a', 'eval-b']);
      expect(sut.services).toHaveLength(6);
    });

    it('should reject options out of range, naming them', () => {
      expect(() => buildScenario({ end: END, days: 0 })).toThrow(/days/);
      expect(() => buildScenario({ end: END, rate: -1 })).toThrow(/rate/);
      expect(() => buildScenario({ end: END, seed: 1.5 })).toThrow(/seed/);
      expect(() => buildScenario({ end: END, firstIncidentDay: 3 })).toThrow(/firstIncidentDay/);
      expect(() => buildScenario({ end: Number.NaN })).toThrow(/end/);
      expect(() => buildScenario({ end: END, tenants: ['x', 'x'] })).toThrow(/distinct/);
    });
  });

  describe('determinism', () => {
    it('should give the same labels and events for the same seed, every call', () => {
      const again = buildScenario({ seed: 7, end: END });
      expect(again.labels).toEqual(sut.labels);
      expect(again.services).toEqual(sut.services);
      const first = all.slice(0, 2000);
      expect([...take(again.events(), 2000)]).toEqual(first);
      expect([...take(sut.events(), 2000)]).toEqual(first);
    });

    it('should give other labels and events for another seed', () => {
      const other = buildScenario({ seed: 8, end: END });
      expect(other.labels).not.toEqual(sut.labels);
      expect([...take(other.events(), 100)]).not.toEqual(all.slice(0, 100));
    });

    it("should give one tenant's events exactly as the merged stream filtered", () => {
      const small = buildScenario({ seed: 5, end: END, days: 1, tenants: 3, rate: 5 });
      const merged = [...small.events()];
      const json = (xs: Iterable<ScenarioEvent>) => [...xs].map((e) => JSON.stringify(e)).join('\n');
      expect(json(small.events('eval-b')) === json(merged.filter((e) => e.tenant === 'eval-b'))).toBe(true);
      expect(small.countEvents('eval-c')).toBe(merged.filter((e) => e.tenant === 'eval-c').length);
      expect(() => small.events('nobody').next()).toThrow(RangeError);
    });
  });

  describe('events', () => {
    it('should come in time order, inside the data, in the ingest shape', () => {
      let last = -Infinity;
      let outOfOrder = 0;
      for (const e of all) {
        const t = Date.parse(e.timestamp);
        if (t < last) outOfOrder++;
        last = t;
      }
      expect(outOfOrder).toBe(0);
      expect(Date.parse(all[0].timestamp)).toBeGreaterThanOrEqual(sut.start);
      expect(last).toBeLessThan(sut.end);
      expect(Object.keys(all[0]).sort()).toEqual(['http', 'performance', 'service', 'tenant', 'timestamp']);
      expect(typeof all[0].http.response.status_code).toBe('number');
      expect(all[0].performance.duration_ms).toBeGreaterThan(0);
    });

    it('should send about rate × minutes requests per service, with the benign traffic increase on top', () => {
      const minutes = (sut.end - sut.start) / MINUTE_MS;
      let expected = 0;
      for (const s of sut.services) {
        const inc = sut.labels.find(
          (l) => l.tenant === s.tenant && l.service === s.name && l.kind === 'traffic_increase',
        );
        const drop =
          sut.labels.filter((l) => l.tenant === s.tenant && l.service === s.name && l.kind === 'traffic_drop').length *
          INCIDENT_MINUTES.traffic_drop;
        const boosted = inc ? (sut.end - inc.start) / MINUTE_MS : 0;
        expected += 10 * (minutes - drop + 0.6 * boosted);
      }
      expect(all.length / expected).toBeGreaterThan(0.96);
      expect(all.length / expected).toBeLessThan(1.04);
    });

    it('should have about 0.5 % server errors and 1 % 404s outside incidents', () => {
      const outside = all.filter(
        (e) =>
          !sut.labels.some(
            (l) => !l.benign && l.tenant === e.tenant && l.service === e.service && inside(e, l.start, l.end),
          ),
      );
      const share = (p: (e: ScenarioEvent) => boolean) => outside.filter(p).length / outside.length;
      expect(share((e) => e.http.response.status_code >= 500)).toBeGreaterThan(0.003);
      expect(share((e) => e.http.response.status_code >= 500)).toBeLessThan(0.007);
      expect(share((e) => e.http.response.status_code === 404)).toBeGreaterThan(0.007);
      expect(share((e) => e.http.response.status_code === 404)).toBeLessThan(0.013);
    });
  });

  describe('labels', () => {
    it('should label one incident of each kind per tenant-day and each benign change once per tenant', () => {
      for (const tenant of sut.tenants) {
        for (let d = 0; d < 2; d++) {
          const day = sut.labels.filter(
            (l) =>
              l.tenant === tenant &&
              !l.benign &&
              l.start >= sut.start + d * DAY_MS &&
              l.start < sut.start + (d + 1) * DAY_MS,
          );
          expect(day.map((l) => l.kind).sort()).toEqual([...INCIDENT_KINDS].sort());
        }
        expect(
          sut.labels
            .filter((l) => l.tenant === tenant && l.benign)
            .map((l) => l.kind)
            .sort(),
        ).toEqual([...BENIGN_KINDS].sort());
      }
      expect(sut.labels).toHaveLength(2 * (2 * 5 + 2));
    });

    it('should place incidents apart per service, never in the first 3 h of a day nor the last 2 h', () => {
      for (const l of sut.labels) {
        const into = (l.start - sut.start) % DAY_MS;
        expect(into).toBeGreaterThanOrEqual(3 * 60 * MINUTE_MS);
        expect(l.start % MINUTE_MS).toBe(0);
        if (!l.benign && l.kind !== 'slow_degradation')
          expect(l.end).toBe(l.start + INCIDENT_MINUTES[l.kind as IncidentKind] * MINUTE_MS);
        if (!l.benign)
          expect(into + INCIDENT_MINUTES[l.kind as IncidentKind] * MINUTE_MS).toBeLessThanOrEqual(
            DAY_MS - 2 * 60 * MINUTE_MS,
          );
        if (l.benign) expect(l.end).toBe(sut.end);
        if (l.kind === 'slow_degradation') expect((l.end - sut.start) % DAY_MS).toBe(0);
      }
      const real = sut.labels.filter((l) => !l.benign);
      for (const a of real) {
        for (const b of real) {
          if (a !== b && a.tenant === b.tenant && a.service === b.service)
            expect(a.start >= b.end || b.start >= a.end).toBe(true);
        }
      }
    });

    it('should keep day 0 clean when incidents start on day 1', () => {
      const s = buildScenario({ seed: 3, end: END, days: 3, firstIncidentDay: 1 });
      expect(s.labels.every((l) => l.start >= s.start + DAY_MS)).toBe(true);
      expect(s.labels.filter((l) => !l.benign)).toHaveLength(2 * 2 * 5);
    });
  });

  describe('incident shapes', () => {
    const eventsOf = (kind: string) => {
      const l = sut.labels.find((x) => x.kind === kind)!;
      const svc = all.filter((e) => e.tenant === l.tenant && e.service === l.service);
      return {
        l,
        during: svc.filter((e) => inside(e, l.start, l.end)),
        before: svc.filter((e) => inside(e, l.start - 60 * MINUTE_MS, l.start)),
      };
    };

    it('should send no request at all during a traffic drop', () => {
      const { during, before } = eventsOf('traffic_drop');
      expect(during).toHaveLength(0);
      expect(before.length).toBeGreaterThan(100);
    });

    it('should multiply latency by about 6 during a latency spike', () => {
      const { during, before } = eventsOf('latency_spike');
      const ratio = median(during.map(lat)) / median(before.map(lat));
      expect(ratio).toBeGreaterThan(4);
      expect(ratio).toBeLessThan(9);
    });

    it('should answer about 35 % of requests with 5xx during an error burst', () => {
      const errors = sut.labels
        .filter((l) => l.kind === 'error_burst')
        .flatMap((l) =>
          all.filter((e) => e.tenant === l.tenant && e.service === l.service && inside(e, l.start, l.end)),
        );
      const share = errors.filter((e) => e.http.response.status_code >= 500).length / errors.length;
      expect(share).toBeGreaterThan(0.22);
      expect(share).toBeLessThan(0.48);
    });

    it('should multiply response bytes by about 20 during a payload change', () => {
      const { during, before } = eventsOf('payload_change');
      const ratio = median(during.map((e) => e.http.response.bytes)) / median(before.map((e) => e.http.response.bytes));
      expect(ratio).toBeGreaterThan(14);
      expect(ratio).toBeLessThan(28);
    });

    it('should ramp latency by 3 %/min for 90 min and then stay until the end of the day', () => {
      const { l, before } = eventsOf('slow_degradation');
      const svc = all.filter((e) => e.tenant === l.tenant && e.service === l.service);
      const base = median(before.map(lat));
      const at = (from: number, to: number) =>
        median(svc.filter((e) => inside(e, l.start + from * MINUTE_MS, l.start + to * MINUTE_MS)).map(lat)) / base;
      expect(at(40, 50)).toBeGreaterThan(1.03 ** 45 * 0.7);
      expect(at(40, 50)).toBeLessThan(1.03 ** 45 * 1.4);
      const stay = (l.end - l.start) / MINUTE_MS;
      expect(at(stay - 30, stay)).toBeGreaterThan(1.03 ** 90 * 0.6);
      expect(at(stay - 30, stay)).toBeLessThan(1.03 ** 90 * 1.6);
      if (l.end < sut.end) expect(at(stay, stay + 30)).toBeLessThan(1.6);
    });

    it('should make the faster deploy 40 % faster from its start on', () => {
      const { l, before } = eventsOf('faster_deploy');
      const svc = all.filter((e) => e.tenant === l.tenant && e.service === l.service);
      const after = svc.filter((e) => inside(e, l.start, l.start + 60 * MINUTE_MS));
      const ratio = median(after.map(lat)) / median(before.map(lat));
      expect(ratio).toBeGreaterThan(0.45);
      expect(ratio).toBeLessThan(0.75);
    });
  });
});

function* take<T>(it: Iterator<T>, n: number): Generator<T> {
  for (let i = 0; i < n; i++) {
    const r = it.next();
    if (r.done) return;
    yield r.value;
  }
}

function inside(e: ScenarioEvent, from: number, to: number): boolean {
  const t = Date.parse(e.timestamp);
  return t >= from && t < to;
}

function lat(e: ScenarioEvent): number {
  return e.performance.duration_ms;
}
