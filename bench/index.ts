/**
 * Benchmark dispatcher: `node dist/bench/index.js <name> [args…]` runs the `run(argv)` export of
 * `bench/<name>.bench.ts`. An unknown or missing name lists the available benchmarks, exit 2.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The contract every `bench/<name>.bench.ts` module fulfils. */
export interface BenchModule {
  run(argv: string[]): Promise<void>;
}

const SUFFIXES = ['.bench.js', '.bench.ts'];

/** Names of the benchmarks next to this file (compiled `.js` or, under ts-node, `.ts`). */
export function availableBenchmarks(dir = __dirname): string[] {
  const names = new Set<string>();
  for (const file of readdirSync(dir)) {
    for (const suffix of SUFFIXES) {
      if (file.endsWith(suffix)) names.add(file.slice(0, -suffix.length));
    }
  }
  return [...names].sort();
}

/** Run benchmark `argv[0]` with the remaining arguments; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const available = availableBenchmarks();
  // The name becomes part of a path: only plain names, never `../x`.
  const file =
    name !== undefined && /^[a-z0-9][a-z0-9-]*$/.test(name)
      ? SUFFIXES.map((s) => join(__dirname, name + s)).find((f) => existsSync(f))
      : undefined;
  if (file === undefined) {
    process.stderr.write(
      `${name === undefined ? 'no benchmark given' : `unknown benchmark: ${name}`}\n` +
        `usage: node dist/bench/index.js <name> [args]\navailable: ${available.join(', ')}\n`,
    );
    return 2;
  }
  const mod = require(file) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') {
    process.stderr.write(`${file} does not export run(argv)\n`);
    return 2;
  }
  await mod.run(rest);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
