import { availableBenchmarks, benchUsage, main } from '../bench/index';
import { join } from 'path';

/** What `main` writes to stdout and stderr while it runs. */
async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  try {
    return { code: await main(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('bench dispatcher (npm run bench -- <name>)', () => {
  it('prints every benchmark’s description and usage for --help, exit 0, without running it', async () => {
    const names = availableBenchmarks(join(__dirname, '..', 'bench'));
    expect(names).toEqual(expect.arrayContaining(['ingest', 'faults', 'partitions', 'series', 'nab-loco']));
    for (const name of names) {
      const { code, out } = await capture([name, '--help']);
      expect(code).toBe(0);
      // Each benchmark's header names its own command line.
      expect(out).toMatch(new RegExp(`(npm run bench -- |dist/bench/index\\.js )${name}\\b`));
      expect(out).not.toMatch(/^\s*\*/m);
    }
  });

  it('answers an option the benchmark does not take with the error and its usage, exit 2', async () => {
    const { code, err } = await capture(['series-null', '--no-such-option']);
    expect(code).toBe(2);
    expect(err).toContain("Unknown option '--no-such-option'");
    expect(err).toContain('series-null');
  });

  it('lists the benchmarks for --help alone, exit 0', async () => {
    const { code, out } = await capture(['--help']);
    expect(code).toBe(0);
    expect(out).toMatch(/available: .*ingest/);
  });

  it('lists the benchmarks for an unknown name, exit 2', async () => {
    const { code, err } = await capture(['../etc']);
    expect(code).toBe(2);
    expect(err).toMatch(/available: .*ingest/);
  });

  it('reads the leading doc comment without its markers', () => {
    const text = benchUsage(join(__dirname, '..', 'bench', 'ingest.bench.ts'));
    expect(text.startsWith('Ingest benchmark:')).toBe(true);
    expect(text).toContain('--settle-seconds');
  });
});
