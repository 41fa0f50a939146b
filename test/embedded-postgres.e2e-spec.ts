import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Client } from 'pg';
import { EmbeddedPostgres } from '../src/modules/store/database/embedded-postgres';

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function query(url: string, sql: string): Promise<unknown[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

describe(EmbeddedPostgres.name, () => {
  const root = mkdtempSync(join(tmpdir(), 'ad-embedded-'));
  const dataDir = join(root, 'pg');
  // As root the server runs as the postgres user, which must be able to reach the data directory.
  chmodSync(root, 0o755);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('should initialise, keep data across restarts, let a second process join, and leave nothing running', async () => {
    const sut = new EmbeddedPostgres({ dataDir, port: 0 });
    const url = await sut.start();
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    await query(url, 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)');

    // A CLI run while the service holds the server joins it rather than starting another.
    const guest = new EmbeddedPostgres({ dataDir, port: 0 });
    const guestUrl = await guest.start();
    expect(new URL(guestUrl).port).toBe(new URL(url).port);
    expect(guest.isOwner).toBe(false);
    await guest.stop();
    expect(isAlive(pid)).toBe(true);

    await sut.stop();
    expect(isAlive(pid)).toBe(false);

    const again = new EmbeddedPostgres({ dataDir, port: 0 });
    const url2 = await again.start();
    expect(await query(url2, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
    await again.stop();
  }, 60_000);

  it('should adopt a server whose owner died and stop it', async () => {
    const first = new EmbeddedPostgres({ dataDir, port: 0 });
    await first.start();
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    // Simulate a SIGKILLed owner: the server keeps running, the owner pid is dead.
    writeFileSync(`${dataDir}.owner`, '999999');
    const heir = new EmbeddedPostgres({ dataDir, port: 0 });
    await heir.start();
    expect(heir.isOwner).toBe(true);
    await heir.stop();
    expect(isAlive(pid)).toBe(false);
    await first.stop();
  }, 60_000);

  it('should delete an ephemeral cluster when stopped', async () => {
    const sut = new EmbeddedPostgres({ dataDir: '', port: 0, ephemeral: true });
    const url = await sut.start();
    expect(await query(url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    const dir = (sut as unknown as { dataDir: string }).dataDir;
    await sut.stop();
    expect(() => readFileSync(join(dir, 'PG_VERSION'))).toThrow();
  }, 60_000);
});
