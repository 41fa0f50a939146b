import { spawnSync, SpawnSyncReturns } from 'child_process';
import { join } from 'path';

const ROOT = join(__dirname, '..');

/** Runs a compiled entry point with a clean environment (no .env of the developer's checkout). */
function run(entry: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(ROOT, 'dist/src', entry), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', ...env },
  });
}

// The compiled CLI and service as operators run them (`npm run train -- --help`, the container's CMD).
describe('Command line and start-up of the compiled service', () => {
  beforeAll(() => {
    // The same staleness check the npm scripts use: builds only when a source is newer than dist/.
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-if-stale.mjs')], { cwd: ROOT, encoding: 'utf8' });
    expect(build.status).toBe(0);
  }, 300_000);

  it.each(['scheduler', 'generate-data', 'train', 'replay', 'migrate', 'migrate:revert'])('should print usage for %s --help and exit 0', (command) => {
    const r = run('cli.js', [command, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`Usage: cli.js ${command} [options]`);
    expect(r.stdout).toContain('-h, --help');
  });

  it('should list the commands on --help and exit 0, and exit 2 on an unknown command', () => {
    const help = run('cli.js', ['--help']);
    expect(help.status).toBe(0);
    for (const c of ['train', 'replay', 'generate-data', 'scheduler', 'migrate']) expect(help.stdout).toContain(c);
    const bad = run('cli.js', ['trian']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown command 'trian'/);
  });

  it('should name the unknown option, and list the allowed formats for a bad --format', () => {
    const unknown = run('cli.js', ['train', '--tenat', 'x']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--tenat'/);
    const format = run('cli.js', ['replay', '--input', 'a', '--output', 'b', '--format', 'xyz']);
    expect(format.status).toBe(2);
    expect(format.stderr).toMatch(/Allowed choices are nab, ndjson/);
  });

  it('should refuse to start in production without METRICS_TOKEN, exit 2 naming it; METRICS_PUBLIC=true lets it through', () => {
    const keys = JSON.stringify({ default: 'production-key-0001' });
    const r = run('main.js', [], { ENVIRONMENT: 'production', TENANT_API_KEYS: keys });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/METRICS_TOKEN/);
    // With the variable set on purpose the configuration passes; start-up then fails later on the
    // unreachable database (exit 1), not on configuration.
    const open = run('main.js', [], { ENVIRONMENT: 'production', TENANT_API_KEYS: keys, METRICS_PUBLIC: 'true', DB_CONNECT_TIMEOUT_SECONDS: '1' });
    expect(open.stderr).not.toMatch(/METRICS_TOKEN/);
    expect(open.status).not.toBe(2);
  });
});
