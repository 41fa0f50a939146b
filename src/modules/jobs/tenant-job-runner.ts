import { Injectable, Logger } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { Counter } from 'prom-client';
import { JobTickRepository } from '../store/job-tick.repository';
import { SCHEDULER_JOBS } from './jobs.metrics';

/** How one tenant's run of a job went. `value` is what the job returned (also when it reported a failure). */
export type JobRun<T> =
  | { outcome: 'ran'; value: T }
  | { outcome: 'skipped'; reason: 'locked' | 'done' }
  | { outcome: 'failed'; error: string; value?: T };

export interface JobRunOptions<T> {
  /**
   * The job's interval: the run happens only if no replica has started this tenant's job in the
   * current interval. Leave it out for a run asked for on purpose (start-up pass, a test, the CLI's
   * `--once`): then only the lock applies.
   */
  intervalMs?: number;
  /** A failure the job reports in its value instead of throwing (a reason, or undefined when it went well). */
  failure?: (value: T) => string | undefined;
}

/**
 * The shared runner of per-tenant periodic jobs (scheduler, series closing, the alert job,
 * retention): each tenant's run holds the job's PostgreSQL advisory lock and records its start, so
 * across replicas a tenant's job runs once per interval; the others count `skipped`. Errors are
 * caught and counted per tenant, so one tenant's failure never stops the others.
 * Counts `anomaly_detector_scheduler_jobs_total{tenant, outcome, job}`.
 */
@Injectable()
export class TenantJobRunner {
  private readonly logger = new Logger(TenantJobRunner.name);

  constructor(
    private readonly ticks: JobTickRepository,
    @InjectMetric(SCHEDULER_JOBS) private readonly counter: Counter<string>,
  ) {}

  /** Runs `fn` for one tenant under the job's lock (and interval, see {@link JobRunOptions}). Never throws. */
  async run<T>(job: string, tenant: string, options: JobRunOptions<T>, fn: () => Promise<T>): Promise<JobRun<T>> {
    let run: JobRun<T>;
    try {
      const r = await this.ticks.runOncePerTick(tenant, job, options.intervalMs, fn, options.failure);
      if (r.status !== 'ran') run = { outcome: 'skipped', reason: r.status };
      else {
        const error = options.failure?.(r.value);
        run = error === undefined ? { outcome: 'ran', value: r.value } : { outcome: 'failed', error, value: r.value };
      }
    } catch (e) {
      run = { outcome: 'failed', error: (e as Error).message };
    }
    this.counter.inc({ tenant, outcome: run.outcome, job });
    if (run.outcome === 'failed') this.logger.error(`${job} job of tenant ${tenant} failed: ${run.error}`);
    return run;
  }

  /**
   * Runs `fn` for each tenant in turn (see {@link run}); stops between tenants once `stopping()`
   * answers true, so shutdown never waits for a whole pass. Returns the runs made, in order.
   */
  async runEach<T>(
    job: string,
    tenants: string[],
    options: JobRunOptions<T>,
    fn: (tenant: string) => Promise<T>,
    stopping: () => boolean = () => false,
  ): Promise<{ tenant: string; run: JobRun<T> }[]> {
    const out: { tenant: string; run: JobRun<T> }[] = [];
    for (const tenant of tenants) {
      if (stopping()) break;
      out.push({ tenant, run: await this.run(job, tenant, options, () => fn(tenant)) });
    }
    return out;
  }
}
