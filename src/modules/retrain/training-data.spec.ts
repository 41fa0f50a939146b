import { LogEvent } from '../detection/features/log-event';
import { cleanTrainingData, splitHoldout } from './training-data';

const T0 = Date.UTC(2025, 10, 14);
const ev = (service: string, minute: number): LogEvent => ({
  timestamp: new Date(T0 + minute * 60_000),
  service,
  durationMs: 100,
  metadata: {},
});
const rules = { minServiceEvents: 10, minServiceSpanMs: 60 * 60_000 };

describe(cleanTrainingData.name, () => {
  it('should drop the events inside their own service’s windows, merging overlapping ones', () => {
    const events = [
      ...Array.from({ length: 120 }, (_, i) => ev('a', i)),
      ...Array.from({ length: 120 }, (_, i) => ev('b', i)),
    ];
    const sut = cleanTrainingData(
      events,
      [
        { service: 'a', from: T0 + 10 * 60_000, to: T0 + 20 * 60_000 },
        { service: 'a', from: T0 + 15 * 60_000, to: T0 + 25 * 60_000 },
      ],
      rules,
    );
    expect(sut.inExclusionWindows).toBe(16);
    expect(sut.events.filter((e) => e.service === 'a').map((e) => (e.timestamp.getTime() - T0) / 60_000)).not.toContain(
      12,
    );
    expect(sut.events.filter((e) => e.service === 'b')).toHaveLength(120);
  });

  it('should leave out services with too few events or too short a span, saying why', () => {
    const events = [
      ...Array.from({ length: 5 }, (_, i) => ev('few', i * 30)),
      ...Array.from({ length: 50 }, (_, i) => ev('short', i)),
      ...Array.from({ length: 50 }, (_, i) => ev('ok', i * 2)),
    ];
    const sut = cleanTrainingData(events, [], rules);
    expect(sut.servicesLeftOut).toEqual([
      { service: 'few', rows: 5, spanMinutes: 120, reason: 'too few events' },
      { service: 'short', rows: 50, spanMinutes: 49, reason: 'too short a span' },
    ]);
    expect(new Set(sut.events.map((e) => e.service))).toEqual(new Set(['ok']));
  });
});

describe(splitHoldout.name, () => {
  it('should hold out the newest share by event time', () => {
    const events = Array.from({ length: 20 }, (_, i) => ev('a', 19 - i));
    const sut = splitHoldout(events, 0.1);
    expect(sut.holdout.map((e) => (e.timestamp.getTime() - T0) / 60_000)).toEqual([18, 19]);
    expect(sut.train).toHaveLength(18);
    expect(splitHoldout([ev('a', 0)], 0.1)).toEqual({ train: [ev('a', 0)], holdout: [] });
  });
});
