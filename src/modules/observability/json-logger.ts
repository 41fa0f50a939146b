import { LoggerService, LogLevel } from '@nestjs/common';
import { requestContext } from './request-context';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];

/**
 * Structured logs: one JSON object per line on stdout (errors on stderr), with the request id of
 * the request being served, ready for Loki/Promtail.
 */
export class JsonLogger implements LoggerService {
  private minLevel: number;

  constructor(
    level: Level = 'info',
    private readonly out: (line: string, isError: boolean) => void = (line, isError) =>
      (isError ? process.stderr : process.stdout).write(line + '\n'),
  ) {
    this.minLevel = LEVELS.indexOf(level);
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  setLogLevels(levels: LogLevel[]): void {
    const mapped = levels.map((l) => (l === 'log' ? 'info' : l === 'verbose' || l === 'fatal' ? 'debug' : l));
    const idx = Math.min(...mapped.map((l) => LEVELS.indexOf(l as Level)).filter((i) => i >= 0));
    if (Number.isFinite(idx)) this.minLevel = idx;
  }

  private write(level: Level, message: unknown, params: unknown[]): void {
    if (LEVELS.indexOf(level) < this.minLevel) return;
    // Nest passes the context as the last string parameter, and for errors the stack before it.
    const rest = [...params];
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level, context };
    const ctx = requestContext.getStore();
    if (ctx) {
      entry.requestId = ctx.requestId;
      if (ctx.tenant) entry.tenant = ctx.tenant;
    }
    if (message instanceof Error) {
      entry.msg = message.message;
      entry.stack = message.stack;
    } else if (message !== null && typeof message === 'object') {
      Object.assign(entry, message);
    } else {
      entry.msg = String(message);
    }
    if (level === 'error' && typeof rest[0] === 'string' && rest[0].includes('\n')) entry.stack = rest.shift();
    if (rest.length) entry.extra = rest;
    this.out(JSON.stringify(entry), level === 'error');
  }
}
