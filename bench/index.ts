/**
 * Benchmark dispatcher: `node dist/bench/index.js <name> [args…]` runs the `run(argv)` export of
 * `bench/<name>.bench.ts`. An unknown or missing name lists the available benchmarks, exit 2;
 * `--help` alone lists them, exit 0.
 * `<name> --help` (or `-h`) prints the benchmark's own description and options (the leading doc
 * comment of its file), exit 0; an option the benchmark does not know prints the error and the
 * same description, exit 2.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

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

/**
 * The leading doc comment of a benchmark file (its description and options), without the comment
 * markers; empty when the file starts with none.
 */
export function benchUsage(file: string): string {
  // The TypeScript source when it is there (dist/bench/x.bench.js → bench/x.bench.ts), else the compiled file.
  const source = join(__dirname, '..', '..', 'bench', basename(file).replace(/\.js$/, '.ts'));
  const m = /\/\*\*([\s\S]*?)\*\//.exec(readFileSync(existsSync(source) ? source : file, 'utf8'));
  if (!m) return '';
  return m[1]
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''))
    .join('\n')
    .trim();
}

/** Run benchmark `argv[0]` with the remaining arguments; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const available = availableBenchmarks();
  if (name === '--help' || name === '-h') {
    process.stdout.write(`usage: npm run bench -- <name> [args]   (<name> --help: its options)\navailable: ${available.join(', ')}\n`);
    return 0;
  }
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
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${benchUsage(file)}\n`);
    return 0;
  }
  const mod = require(file) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') {
    process.stderr.write(`${file} does not export run(argv)\n`);
    return 2;
  }
  try {
    await mod.run(rest);
  } catch (e) {
    // util.parseArgs: an option the benchmark does not take, or one without its value.
    const code = (e as { code?: string }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      process.stderr.write(`${(e as Error).message}\n\n${benchUsage(file)}\n`);
      return 2;
    }
    throw e;
  }
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
