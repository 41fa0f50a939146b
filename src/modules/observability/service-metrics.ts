import { Inject, Injectable, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { makeGaugeProvider, InjectMetric } from '@willsoto/nestjs-prometheus';
import { existsSync, readFileSync } from 'fs';
import { dirname, join } from 'path';
import { Gauge, register } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { METRIC_PREFIX, zeroKnownCounters } from './metric-names';

export const BUILD_INFO = `${METRIC_PREFIX}build_info`;

/**
 * prom-client's totals of active handles, requests and resources are gauges named like counters,
 * which `promtool check metrics` rejects; the same figures stay available by type in
 * `nodejs_active_handles`, `nodejs_active_requests` and `nodejs_active_resources` (sum them).
 */
const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export const serviceMetricProviders = [
  makeGaugeProvider({ name: BUILD_INFO, help: 'Always 1; the running version in labels', labelNames: ['version', 'nodejs_version'] }),
];

/** The version in the package.json of this build (the nearest one above this file), or "unknown". */
export function packageVersion(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'anomaly-detector') return pkg.version ?? 'unknown';
  }
  return 'unknown';
}

/**
 * Sets up the exposition once the metrics exist: build info, the known counter series at zero for
 * every configured tenant (see `makeZeroedCounterProvider`), and the misnamed defaults dropped.
 */
@Injectable()
export class ServiceMetrics implements OnModuleInit, OnApplicationBootstrap {
  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    @InjectMetric(BUILD_INFO) private readonly buildInfo: Gauge<string>,
  ) {}

  onModuleInit(): void {
    for (const name of MISNAMED_DEFAULT_METRICS) register.removeSingleMetric(name);
    this.buildInfo.set({ version: packageVersion(), nodejs_version: process.version }, 1);
  }

  /** After every module's providers (and so every counter) exist. */
  onApplicationBootstrap(): void {
    zeroKnownCounters(register, this.config.tenants);
  }
}
