/**
 * The README's demo traffic: POSTs `count` (default 500) normal requests of one service to a running
 * service's /ingest, dated over the last `count` seconds (so within any accepted age), with latency
 * and response size drawn around what `npm run generate-data` gives that service (log-normal: median
 * 223 ms, σ 0.35; median 5,000 bytes, σ 0.3). Prints how many were accepted and how many scored
 * anomalous. Exit 1 when the service answers anything but 200.
 *
 *   node scripts/demo-normal-events.mjs [--url http://localhost:8000] [--service seo-optimizer] [--count 500] [--key API_KEY]
 */
import console from 'node:console';
import process from 'node:process';
import { parseArgs } from 'node:util';

const USAGE =
  'usage: node scripts/demo-normal-events.mjs [--url http://localhost:8000] [--service seo-optimizer] [--count 500] [--key API_KEY]';
let values;
try {
  ({ values } = parseArgs({
    options: {
      url: { type: 'string', default: `http://localhost:${process.env.PORT ?? 8000}` },
      service: { type: 'string', default: 'seo-optimizer' },
      count: { type: 'string', default: '500' },
      key: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (e) {
  console.error(`${e.message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
/** A standard normal draw (Box–Muller). */
const gauss = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
const count = Number(values.count);
const now = Date.now();
const events = Array.from({ length: count }, (_, i) => ({
  timestamp: new Date(now - (count - i) * 1000).toISOString(),
  service: values.service,
  http: { request: { method: 'GET', path: '/api/pages' }, response: { status_code: 200, bytes: Math.round(5000 * Math.exp(0.3 * gauss())) } },
  performance: { duration_ms: Math.round(223 * Math.exp(0.35 * gauss())) },
}));
const res = await globalThis.fetch(`${values.url}/ingest`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(values.key ? { 'x-api-key': values.key } : {}) },
  body: JSON.stringify(events),
});
const body = await res.json();
if (res.status !== 200) {
  console.error(`ingest answered ${res.status}: ${JSON.stringify(body).slice(0, 500)}`);
  process.exit(1);
}
console.log(`${body.accepted} accepted, ${body.results.filter((r) => r.detection?.prediction === -1).length} scored anomalous`);
