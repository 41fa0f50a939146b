import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Rng } from '../core/rng';
import { SeriesDetectorError } from './errors';
import { parseNabCsv, parseNabTimestamp, parseReplayArgs, replayNab, scoreNabSeries } from './nab-replay';

/** A NAB-style CSV: 5-minute steps from 2014-04-01, noise around `level`, a jump at `jumpAt`. */
function nabCsv(rows: number, seed: number, level: number, jumpAt = -1): string {
  const rng = new Rng(seed);
  const lines = ['timestamp,value'];
  const t0 = Date.UTC(2014, 3, 1);
  for (let i = 0; i < rows; i++) {
    const ts = new Date(t0 + i * 300_000).toISOString().slice(0, 19).replace('T', ' ');
    const v = level + rng.nextDouble() * 2 + (jumpAt >= 0 && i >= jumpAt ? 10 * level : 0);
    lines.push(`${ts},${v}`);
  }
  return lines.join('\n') + '\n';
}

function readResults(file: string): string[][] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(','));
}

describe('nab-replay', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nab-replay-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe(replayNab.name, () => {
    it('should replay a folder tree into the same relative paths with one score in [0, 1] per row', () => {
      const input = join(dir, 'in');
      mkdirSync(join(input, 'catA'), { recursive: true });
      mkdirSync(join(input, 'catB'), { recursive: true });
      const a = nabCsv(600, 1, 20, 500);
      const b = nabCsv(300, 2, 5);
      writeFileSync(join(input, 'catA', 'a.csv'), a);
      writeFileSync(join(input, 'catB', 'b.csv'), b);
      const seen: string[] = [];

      const sut = replayNab(
        { inputDir: input, outputDir: join(dir, 'out') },
        { onFile: (done, total, file) => seen.push(`${done}/${total} ${file}`) },
      );

      expect(sut).toEqual({ files: 2, rows: 900 });
      expect(seen).toEqual([`1/2 ${join('catA', 'a.csv')}`, `2/2 ${join('catB', 'b.csv')}`]);
      for (const [name, source, rows] of [
        [join('catA', 'a.csv'), a, 600],
        [join('catB', 'b.csv'), b, 300],
      ] as const) {
        const out = readResults(join(dir, 'out', name));
        expect(out[0]).toEqual(['timestamp', 'value', 'anomaly_score']);
        expect(out.length).toBe(rows + 1);
        const src = source.trim().split('\n');
        out.slice(1).forEach((cells, i) => {
          // Timestamps and values are written back exactly as read.
          expect(`${cells[0]},${cells[1]}`).toBe(src[i + 1]);
          const score = Number(cells[2]);
          expect(score).toBeGreaterThanOrEqual(0);
          expect(score).toBeLessThanOrEqual(1);
        });
      }
      // The jump in a.csv is its most anomalous point.
      const scores = readResults(join(dir, 'out', 'catA', 'a.csv'))
        .slice(1)
        .map((c) => Number(c[2]));
      expect(scores.indexOf(Math.max(...scores))).toBe(500);
    });

    it('should replay one file', () => {
      writeFileSync(join(dir, 'one.csv'), nabCsv(100, 3, 1));
      expect(replayNab({ input: join(dir, 'one.csv'), output: join(dir, 'x', 'one.out.csv') })).toEqual({
        files: 1,
        rows: 100,
      });
      expect(readResults(join(dir, 'x', 'one.out.csv')).length).toBe(101);
    });

    it('should leave ndjson to the event replay and refuse unknown formats and empty folders', () => {
      // Events are replayed by the CLI through event and series detection, not as NAB series.
      expect(() => replayNab({ inputDir: dir, outputDir: join(dir, 'o') }, { format: 'ndjson' })).toThrow(
        SeriesDetectorError,
      );
      expect(() => replayNab({ inputDir: dir, outputDir: join(dir, 'o') }, { format: 'xml' })).toThrow(
        SeriesDetectorError,
      );
      expect(() => replayNab({ inputDir: dir, outputDir: join(dir, 'o') })).toThrow(/no \.csv files/);
      expect(() => replayNab({ inputDir: join(dir, 'nope'), outputDir: join(dir, 'o') })).toThrow(/no such folder/);
    });
  });

  describe(parseReplayArgs.name, () => {
    it('should accept one file or one folder, with nab as the default format', () => {
      expect(parseReplayArgs(['--input', 'a.csv', '--output', 'b.csv'])).toEqual({
        target: { input: 'a.csv', output: 'b.csv' },
        format: 'nab',
      });
      expect(parseReplayArgs(['--input-dir', 'd', '--output-dir', 'o', '--format', 'ndjson'])).toEqual({
        target: { inputDir: 'd', outputDir: 'o' },
        format: 'ndjson',
      });
    });

    it('should reject missing halves, mixed modes and unknown options', () => {
      expect(() => parseReplayArgs([])).toThrow(SeriesDetectorError);
      expect(() => parseReplayArgs(['--input', 'a.csv'])).toThrow(/--output/);
      expect(() => parseReplayArgs(['--input', 'a', '--output', 'b', '--input-dir', 'd'])).toThrow(/not both/);
      expect(() => parseReplayArgs(['--bogus'])).toThrow(SeriesDetectorError);
    });
  });

  describe(parseNabCsv.name, () => {
    it('should parse timestamps as UTC and keep the original cells', () => {
      const sut = parseNabCsv('timestamp,value\n2014-04-01 00:00:00,1.50\n2014-04-01 00:05:00,\n');
      expect(sut.timestamps).toEqual(['2014-04-01 00:00:00', '2014-04-01 00:05:00']);
      expect(sut.valueCells).toEqual(['1.50', '']);
      expect(Array.from(sut.times)).toEqual([Date.UTC(2014, 3, 1), Date.UTC(2014, 3, 1, 0, 5)]);
      expect(sut.values[0]).toBe(1.5);
      expect(Number.isNaN(sut.values[1])).toBe(true);
    });

    it('should name the file and line of a bad row', () => {
      expect(() => parseNabCsv('timestamp,value\n2014-04-01 00:00:00,abc\n', 'f.csv')).toThrow('f.csv:2');
      expect(() => parseNabCsv('time,v\n', 'f.csv')).toThrow(/header/);
    });

    it('should keep rows whose timestamps repeat or go back, in file order', () => {
      const sut = parseNabCsv('timestamp,value\n2014-04-01 00:05:00,1\n2014-04-01 00:05:00,2\n2014-04-01 00:00:00,3\n');
      expect(Array.from(sut.times)).toEqual([
        Date.UTC(2014, 3, 1, 0, 5),
        Date.UTC(2014, 3, 1, 0, 5),
        Date.UTC(2014, 3, 1),
      ]);
      expect(Array.from(sut.values)).toEqual([1, 2, 3]);
    });
  });

  describe(parseNabTimestamp.name, () => {
    it('should read NAB timestamps with or without fractional seconds', () => {
      expect(parseNabTimestamp('2014-02-14 14:30:00')).toBe(Date.UTC(2014, 1, 14, 14, 30));
      expect(parseNabTimestamp('2014-02-14 14:30:00.000000')).toBe(Date.UTC(2014, 1, 14, 14, 30));
      expect(() => parseNabTimestamp('14/02/2014')).toThrow(SeriesDetectorError);
    });
  });

  describe(scoreNabSeries.name, () => {
    it('should score a missing value as 0 without failing the file', () => {
      const sut = scoreNabSeries(parseNabCsv('timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,\n'));
      expect(Array.from(sut)).toEqual([0, 0]);
    });

    it('should score every row of a file with a clock change: repeats once, the hour replayed without harm', () => {
      const hourly = (i: number): string =>
        new Date(Date.UTC(2014, 9, 1) + i * 3_600_000).toISOString().replace('T', ' ').slice(0, 19);
      const value = (i: number): number => 50 + 20 * Math.sin((2 * Math.PI * i) / 24) + ((i * 7) % 5);
      const rows: string[] = [];
      for (let i = 0; i < 24 * 20; i++) rows.push(`${hourly(i)},${value(i)}`);
      const clean = parseNabCsv(['timestamp,value', ...rows].join('\n'));
      // At row 300 the clock goes back two hours (the two hours come again) and row 400 is sent twice.
      const shifted = [
        ...rows.slice(0, 300),
        rows[298],
        rows[299],
        ...rows.slice(300, 400),
        rows[399],
        ...rows.slice(400),
      ];
      const sut = scoreNabSeries(parseNabCsv(['timestamp,value', ...shifted].join('\n')));
      const reference = scoreNabSeries(clean);
      expect(sut.length).toBe(shifted.length);
      expect(sut.every((x) => x >= 0 && x <= 1)).toBe(true);
      // A repeat of the previous timestamp scores 0; the learned state is unchanged, so the rows
      // after the disorder score exactly as in the clean file.
      expect(sut[402]).toBe(0);
      expect(Array.from(sut.slice(403))).toEqual(Array.from(reference.slice(400)));
      expect(Array.from(sut.slice(0, 300))).toEqual(Array.from(reference.slice(0, 300)));
    });
  });
});
