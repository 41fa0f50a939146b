import request from 'supertest';
import { TenantJobRunner } from '../src/modules/jobs/tenant-job-runner';
import { RetrainService } from '../src/modules/retrain/retrain.service';
import { SchedulerService } from '../src/modules/retrain/retrain.jobs';
import { JobTickRepository } from '../src/modules/store/job-tick.repository';
import { newTenantId, startTestApp, TestApp } from './support/test-app';
import { sleep, waitFor } from './factories/alert-traffic';

const DAY_MS = 86_400_000;

describe('Per-tenant periodic jobs across replicas', () => {
  const tenants = [newTenantId('j'), newTenantId('j')];
  let one: TestApp;
  let two: TestApp;

  beforeAll(async () => {
    // Nothing to pull or retrain: the job itself is cheap, what is tested is who runs it.
    const cfg = {
      multiTenantEnabled: true,
      defaultTenant: tenants[0],
      tenants,
      retrainIntervalHours: 1000,
      retrainAnomalyThreshold: 100_000,
      detectionIntervalSeconds: DAY_MS / 1000,
    };
    one = await startTestApp(cfg);
    two = await startTestApp(cfg);
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
  });

  it('should run a tenant once per interval whichever replica fires, and count skipped on the other (scheduler)', async () => {
    // Both replicas' timers fire, at the same moment and later, in one (day-long) interval.
    const scheduled = { scheduled: true };
    const [a, b] = await Promise.all([
      one.app.get(SchedulerService).tick(undefined, undefined, scheduled),
      two.app.get(SchedulerService).tick(undefined, undefined, scheduled),
    ]);
    const later = [
      ...(await one.app.get(SchedulerService).tick(undefined, undefined, scheduled)),
      ...(await two.app.get(SchedulerService).tick(undefined, undefined, scheduled)),
    ];
    for (const t of tenants) {
      const runs = [...a, ...b, ...later].filter((r) => r.tenant === t);
      expect(runs).toHaveLength(4);
      expect(runs.filter((r) => r.ran)).toHaveLength(1);
    }
    const prom = (await request(one.http).get('/prom').expect(200)).text + (await request(two.http).get('/prom').expect(200)).text;
    expect(prom).toMatch(new RegExp(`scheduler_jobs_total\\{tenant="${tenants[0]}",outcome="skipped",job="scheduler"\\} [1-9]`));
    // A pass asked for on purpose runs anyway (under the lock only).
    const forced = await two.app.get(SchedulerService).tick([tenants[0]]);
    expect(forced).toEqual([expect.objectContaining({ tenant: tenants[0], ran: true })]);
  });

  it('should run each tenant once per tick in total when two replicas run their timers (1 s interval)', async () => {
    const t = newTenantId('tick');
    const runs: number[] = [];
    const job = async () => {
      runs.push(Date.now());
    };
    const runners = [one, two].map((app) => app.app.get(TenantJobRunner));
    // Both replicas fire every 100 ms for 6 s (the real timers are aligned once per interval; firing
    // ten times as often and unaligned is the harder case).
    const stopAt = Date.now() + 6000;
    const started = Date.now();
    await Promise.all(
      runners.map(async (runner) => {
        while (Date.now() < stopAt) {
          await runner.run('test-tick', t, { intervalMs: 1000 }, job);
          await sleep(100);
        }
      }),
    );
    const buckets = runs.map((at) => Math.floor(at / 1000));
    // Never two runs in one interval (a run starts within a few ms of its claim, well inside it)...
    expect(new Set(buckets).size).toBe(runs.length);
    // ...and no interval lost while replicas fire.
    const intervals = Math.floor(stopAt / 1000) - Math.floor(started / 1000) + 1;
    expect(runs.length).toBeGreaterThanOrEqual(intervals - 2);
    expect(runs.length).toBeLessThanOrEqual(intervals);
    const last = await one.app.get(JobTickRepository).last(t, 'test-tick');
    expect(last).toMatchObject({ outcome: 'ran', runs: runs.length });
  });

  it('should record a failed run and let the next interval run again', async () => {
    const t = newTenantId('fail');
    const runner = one.app.get(TenantJobRunner);
    const r = await runner.run('test-fail', t, { intervalMs: 400 }, async () => {
      throw new Error('boom');
    });
    expect(r).toEqual({ outcome: 'failed', error: 'boom' });
    expect(await one.app.get(JobTickRepository).last(t, 'test-fail')).toMatchObject({ outcome: 'failed', runs: 1 });
    // The failed run still counts for its interval; the next interval runs.
    const next = await waitFor(
      async () => {
        const run = await runner.run('test-fail', t, { intervalMs: 400 }, async () => 'ok');
        return run.outcome === 'ran' ? run : undefined;
      },
      20_000,
      'a run in the next interval',
    );
    expect(next).toEqual({ outcome: 'ran', value: 'ok' });
  });

  it('should skip, not wait, while another replica holds the tenant job', async () => {
    const t = newTenantId('lock');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = one.app.get(TenantJobRunner).run('test-lock', t, {}, () => held);
    await waitFor(async () => (await one.app.get(JobTickRepository).last(t, 'test-lock')) !== null, 20_000, 'the first run to start');
    expect(await two.app.get(TenantJobRunner).run('test-lock', t, {}, async () => 'second')).toEqual({
      outcome: 'skipped',
      reason: 'locked',
    });
    release();
    expect(await first).toEqual({ outcome: 'ran', value: undefined });
  });

  it('should retrain a tenant at most once per interval with two replicas on the scheduler timer', async () => {
    const t = newTenantId('rt');
    const cfg = {
      defaultTenant: t,
      tenants: [t],
      detectionIntervalSeconds: 1,
      schedulerEnabled: true,
    };
    const [p, q] = [await startTestApp(cfg), await startTestApp(cfg)];
    const calls: number[] = [];
    for (const app of [p, q]) {
      // Count the retrain checks the scheduler makes; none is due (nothing would be trained).
      jest.spyOn(app.app.get(RetrainService), 'due').mockImplementation(async () => {
        calls.push(Date.now());
        return null;
      });
    }
    try {
      const started = Date.now();
      await sleep(5000);
      const elapsed = Math.floor(Date.now() / 1000) - Math.floor(started / 1000) + 1;
      expect(calls.length).toBeGreaterThanOrEqual(2);
      expect(calls.length).toBeLessThanOrEqual(elapsed);
      expect(new Set(calls.map((c) => Math.floor(c / 1000))).size).toBe(calls.length);
    } finally {
      jest.restoreAllMocks();
      await p.close();
      await q.close();
    }
  });
});
