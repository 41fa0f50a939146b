// Compiles (tsc -p tsconfig.build.json) only when a source is newer than the last build, so the npm
// scripts that run dist/ (cli, train, replay, scheduler, generate-data, migration:*) start at once when
// dist/ is current instead of spending seconds in tsc. tsc writes dist/.tsbuildinfo.build on each build.
// Usage: node scripts/build-if-stale.mjs [--check]   (--check: exit 1 when stale, build nothing)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist/.tsbuildinfo.build');
const inputs = ['src', 'migrations', 'bench', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

/** Newest modification time under `path` (files and folders: a deleted file changes its folder). */
function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = st.mtimeMs;
  // Unit specs sit beside the sources but are not built.
  for (const entry of readdirSync(path)) if (!entry.endsWith('.spec.ts')) t = Math.max(t, newest(join(path, entry)));
  return t;
}

const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
const changed = Math.max(...inputs.map((p) => newest(join(root, p))));
if (built >= changed) process.exit(0);
if (process.argv.includes('--check')) process.exit(1);
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
// tsc leaves its build info alone when a touched file compiles to the same output: stamp it.
if (tsc.status === 0 && existsSync(stamp)) utimesSync(stamp, new Date(), new Date());
process.exit(tsc.status ?? 1);
