import { closeSync, createReadStream, openSync, readFileSync, readSync, statSync } from 'fs';
import { createInterface } from 'readline';
import { FieldError, LogEvent, parseLogEvent } from '../detection/features/log-event';

export interface TenantDataset {
  events: LogEvent[];
  /** The injected-incident label of each event (undefined for normal events); never a feature. */
  labels: (string | undefined)[];
}

export interface Dataset {
  byTenant: Map<string, TenantDataset>;
  invalid: number;
  /** The first few rejected items, for the operator. */
  examples: { index: number; errors: FieldError[] }[];
}

/**
 * Reads the training dataset of SPEC §5: a JSON array or NDJSON of events in the ingest shape, each
 * with an optional `tenant` (else `defaultTenant`) and `label`. Invalid items are counted and
 * skipped, not fatal.
 * @throws Error when the file is missing or is neither JSON nor NDJSON.
 */
export async function readTrainingDataset(path: string, defaultTenant: string, maxMetadataBytes = 16 * 1024): Promise<Dataset> {
  statSync(path);
  const out: Dataset = { byTenant: new Map(), invalid: 0, examples: [] };
  const add = (item: unknown, index: number) => {
    const r = parseLogEvent(item, { maxMetadataBytes, datasetFields: true });
    if (!r.ok) {
      out.invalid++;
      if (out.examples.length < 5) out.examples.push({ index, errors: r.errors });
      return;
    }
    const tenant = r.tenant ?? defaultTenant;
    const ds = out.byTenant.get(tenant) ?? { events: [], labels: [] };
    ds.events.push(r.event);
    ds.labels.push(r.label);
    out.byTenant.set(tenant, ds);
  };
  if (firstNonSpace(path) === '[') {
    let items: unknown;
    try {
      items = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
    }
    (items as unknown[]).forEach(add);
    return out;
  }
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let index = 0;
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let item: unknown;
    try {
      item = JSON.parse(line);
    } catch {
      out.invalid++;
      if (out.examples.length < 5) out.examples.push({ index, errors: [{ field: '(line)', reason: 'not valid JSON' }] });
      index++;
      continue;
    }
    add(item, index++);
  }
  return out;
}

function firstNonSpace(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const m = /\S/.exec(buf.toString('utf8', 0, n));
    return m ? m[0] : '';
  } finally {
    closeSync(fd);
  }
}
