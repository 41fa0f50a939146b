import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { LabelFileError, labelsFromEvents, readLabelFile } from './replay-labels';

const at = (iso: string) => ({ service: 'search', timestamp: new Date(iso) });

describe('labelsFromEvents', () => {
  it('should make one window per run of labelled events, split where they are more than 15 minutes apart', () => {
    const events = [
      at('2026-11-30T10:00:10Z'),
      at('2026-11-30T10:03:50Z'),
      at('2026-11-30T10:01:00Z'),
      at('2026-11-30T10:30:00Z'), // a second burst, 26 min after the first ended
      at('2026-11-30T10:31:59Z'),
      at('2026-11-30T10:05:00Z'), // not labelled
      { service: 'orders', timestamp: new Date('2026-11-30T10:02:00Z') },
    ];
    const labels = ['error_burst', 'error_burst', 'error_burst', 'error_burst', 'error_burst', undefined, 'faster_deploy'];
    const out = labelsFromEvents('t1', events, labels);
    expect(out).toEqual([
      { tenant: 't1', service: 'search', kind: 'error_burst', start: Date.parse('2026-11-30T10:00:00Z'), end: Date.parse('2026-11-30T10:04:00Z'), benign: false },
      { tenant: 't1', service: 'orders', kind: 'faster_deploy', start: Date.parse('2026-11-30T10:02:00Z'), end: Date.parse('2026-11-30T10:03:00Z'), benign: true },
      { tenant: 't1', service: 'search', kind: 'error_burst', start: Date.parse('2026-11-30T10:30:00Z'), end: Date.parse('2026-11-30T10:32:00Z'), benign: false },
    ]);
  });

  it('should give no labels for unlabelled events', () => {
    expect(labelsFromEvents('t1', [at('2026-11-30T10:00:00Z')], [undefined])).toEqual([]);
  });
});

describe('readLabelFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'labels-'));
  const file = (name: string, body: string) => {
    const p = join(dir, name);
    writeFileSync(p, body);
    return p;
  };

  it('should read ISO or epoch-ms times, default the tenant and whether a kind is benign', () => {
    const p = file('ok.json', JSON.stringify({ labels: [
      { service: 'a', kind: 'latency_spike', start: '2026-11-30T10:00:00Z', end: '2026-11-30T10:06:00Z' },
      { tenant: 'x', service: 'b', kind: 'faster_deploy', start: 1_764_500_000_000, end: 1_764_500_060_000 },
      { service: 'c', kind: 'maintenance', start: 1_764_500_000_000, end: 1_764_500_060_000, benign: true },
    ] }));
    expect(readLabelFile(p, 'default')).toEqual([
      { tenant: 'default', service: 'a', kind: 'latency_spike', start: Date.parse('2026-11-30T10:00:00Z'), end: Date.parse('2026-11-30T10:06:00Z'), benign: false },
      { tenant: 'x', service: 'b', kind: 'faster_deploy', start: 1_764_500_000_000, end: 1_764_500_060_000, benign: true },
      { tenant: 'default', service: 'c', kind: 'maintenance', start: 1_764_500_000_000, end: 1_764_500_060_000, benign: true },
    ]);
  });

  it.each([
    ['not JSON', '[{', /is not valid JSON/],
    ['not a list', '{"x":1}', /expected a JSON array of labels/],
    ['an item that is not an object', '[3]', /labels\[0\]: expected an object/],
    ['a missing service', '[{"kind":"k","start":0,"end":1}]', /labels\[0\]\.service: expected a non-empty string/],
    ['a bad start', '[{"service":"s","kind":"k","start":"yesterday","end":1}]', /labels\[0\]\.start: expected an ISO 8601 date-time/],
    ['an end before the start', '[{"service":"s","kind":"k","start":10,"end":5}]', /labels\[0\]\.end: must be after start/],
    ['a benign that is not a boolean', '[{"service":"s","kind":"k","start":0,"end":1,"benign":"yes"}]', /labels\[0\]\.benign: expected true or false/],
  ])('should refuse %s, naming the item and field', (_what, body, message) => {
    const p = file(`bad-${Math.random()}.json`, body);
    expect(() => readLabelFile(p, 'default')).toThrow(LabelFileError);
    expect(() => readLabelFile(p, 'default')).toThrow(message);
  });

  it('should pass the file system error on for a missing file', () => {
    expect(() => readLabelFile(join(dir, 'none.json'), 'default')).toThrow(/ENOENT/);
  });
});
