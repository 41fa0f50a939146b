import { ReplayDetection, SeriesTrace } from './replay-engine';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const W = 900;
const H = 140;
const PAD = 30;

function chart(title: string, minutes: number[], values: (number | null)[], marks: number[], color: string): string {
  // A loop, not Math.max(...values): a long series would overflow the call stack.
  let max = 1e-9;
  let any = false;
  for (const v of values) {
    if (v === null) continue;
    any = true;
    if (v > max) max = v;
  }
  if (!any) max = 1;
  const indexOf = new Map<number, number>();
  minutes.forEach((t, i) => indexOf.set(t, i));
  const t0 = minutes[0];
  const span = Math.max(1, minutes[minutes.length - 1] - t0);
  const x = (t: number) => PAD + ((t - t0) / span) * (W - 2 * PAD);
  const y = (v: number) => H - PAD + 10 - (v / max) * (H - PAD - 10);
  const segments: string[] = [];
  let current: string[] = [];
  values.forEach((v, i) => {
    if (v === null) {
      if (current.length) segments.push(current.join(' '));
      current = [];
    } else current.push(`${x(minutes[i]).toFixed(1)},${y(v).toFixed(1)}`);
  });
  if (current.length) segments.push(current.join(' '));
  const lines = segments.map((pts) => `<polyline fill="none" stroke="${color}" stroke-width="1.2" points="${pts}"/>`).join('');
  const dots = marks
    .map((t) => {
      const i = indexOf.get(t);
      const v = i !== undefined ? values[i] : null;
      return `<circle cx="${x(t).toFixed(1)}" cy="${(v === null ? H - PAD + 10 : y(v)).toFixed(1)}" r="3.5" fill="#d62728"><title>${esc(new Date(t).toISOString())}</title></circle>`;
    })
    .join('');
  return (
    `<figure><figcaption>${esc(title)} (max ${Math.round(max * 1000) / 1000})</figcaption>` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">` +
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#fafafa"/>` +
    `<line x1="${PAD}" y1="${H - PAD + 10}" x2="${W - PAD}" y2="${H - PAD + 10}" stroke="#999"/>` +
    `<text x="${PAD}" y="${H - 4}" font-size="10">${esc(new Date(t0).toISOString())}</text>` +
    `<text x="${W - PAD}" y="${H - 4}" font-size="10" text-anchor="end">${esc(new Date(minutes[minutes.length - 1]).toISOString())}</text>` +
    `${lines}${dots}</svg></figure>`
  );
}

/** A self-contained HTML page: per service, its series with the detections marked, and a table. */
export function renderReplayReport(title: string, traces: SeriesTrace[], detections: ReplayDetection[], summary: Record<string, unknown>): string {
  const minuteOf = (iso: string) => {
    const t = Date.parse(iso);
    return t - (t % 60_000);
  };
  const sections = traces
    .map((tr) => {
      const mine = detections.filter((d) => d.service === tr.service);
      const series = (metric: string) => mine.filter((d) => d.kind === 'series' && d.metric === metric).map((d) => minuteOf(d.timestamp));
      const events = [...new Set(mine.filter((d) => d.kind === 'event').map((d) => minuteOf(d.timestamp)))];
      return (
        `<section><h2>${esc(tr.service)}</h2>` +
        chart('requests per minute', tr.minutes, tr.count, series('request_count'), '#1f77b4') +
        chart('latency p95 (ms), event anomalies marked', tr.minutes, tr.latencyP95, [...new Set([...series('latency_p95'), ...events])], '#2ca02c') +
        chart('error rate', tr.minutes, tr.errorRate, series('error_rate'), '#ff7f0e') +
        `</section>`
      );
    })
    .join('');
  const rows = detections
    .slice(0, 500)
    .map(
      (d) =>
        `<tr><td>${esc(d.timestamp)}</td><td>${esc(d.service)}</td><td>${d.kind}</td><td>${esc(d.metric ?? '')}</td><td>${d.score.toFixed(4)}</td>` +
        `<td>${esc(String((d.explanation as { summary?: string } | undefined)?.summary ?? (d.metric ? `${d.metric} ${d.value} (expected ${d.expected})` : '')))}</td></tr>`,
    )
    .join('');
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>` +
    `<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}figure{margin:8px 0}figcaption{font-size:12px;color:#555}` +
    `table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px}</style></head><body>` +
    `<h1>${esc(title)}</h1><pre>${esc(JSON.stringify(summary, null, 2))}</pre>${sections}` +
    `<h2>Detections</h2><table><thead><tr><th>time</th><th>service</th><th>kind</th><th>metric</th><th>score</th><th>why</th></tr></thead><tbody>${rows}</tbody></table>` +
    `</body></html>`
  );
}
