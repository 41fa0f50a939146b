import { readFileSync } from 'fs';
import { dirname, join } from 'path';
import { ReplayDetection, SeriesTrace } from './replay-engine';

/** An incident to shade on the charts: a service's time span in event time (ms since the epoch). */
export interface ReportIncident {
  service: string;
  start: number;
  end: number;
  label?: string;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** JSON safe inside a <script> element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

let chartJs: string | undefined;

/**
 * Chart.js's UMD build (the maintained charting library, MIT), read once from node_modules and
 * inlined into every report so it opens offline (~210 KB per report).
 */
function chartJsSource(): string {
  if (chartJs === undefined) {
    const file = join(dirname(require.resolve('chart.js')), 'chart.umd.min.js');
    chartJs = readFileSync(file, 'utf8').replace(/<\/script/gi, '<\\/script');
  }
  return chartJs;
}

/** Per service and chart: the series and the detections to mark on it. */
interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  color: string;
  points: [number, number | null][];
  series: [number, number | null][];
  events: [number, number | null][];
  incidents: [number, number][];
}

/**
 * The page script: one Chart.js line chart per spec, with a time axis (UTC ticks between the ends),
 * a y axis titled with its unit, a legend, the series detections as red triangles at their minute,
 * each event anomaly as a purple circle at its own time (latency chart: its duration), and incidents
 * as shaded spans drawn by a small plugin.
 */
const PAGE_SCRIPT = `
const specs = JSON.parse(document.getElementById('report-data').textContent);
const pad = (n) => String(n).padStart(2, '0');
function timeLabel(ms, span) {
  const d = new Date(ms);
  const hm = pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes());
  return span > 86400000 ? (d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' + hm : hm;
}
const incidentShade = {
  id: 'incidentShade',
  beforeDatasetsDraw(chart, _args, opts) {
    const { ctx, chartArea, scales } = chart;
    ctx.save();
    ctx.fillStyle = 'rgba(255, 193, 7, 0.22)';
    for (const [a, b] of opts.spans || []) {
      const x0 = Math.max(chartArea.left, scales.x.getPixelForValue(a));
      const x1 = Math.min(chartArea.right, scales.x.getPixelForValue(b));
      if (x1 > x0) ctx.fillRect(x0, chartArea.top, Math.max(2, x1 - x0), chartArea.bottom - chartArea.top);
    }
    ctx.restore();
  },
};
window.reportCharts = specs.map((s) => {
  // Points are in time order; no Math.min(...xs): a long series would overflow the call stack.
  const min = s.points.length ? s.points[0][0] : 0, max = s.points.length ? s.points[s.points.length - 1][0] : 60000;
  const span = Math.max(60000, max - min);
  // Ticks on round times: the smallest step of these (minutes) giving at most 8 ticks.
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * 60000).find((st) => span / st <= 8) || 604800000;
  const xy = (pts) => pts.map(([x, y]) => ({ x, y }));
  return new Chart(document.getElementById(s.id), {
    type: 'line',
    data: {
      datasets: [
        { label: s.title + ' (' + s.unit + ')', data: xy(s.points), borderColor: s.color, backgroundColor: s.color, borderWidth: 1.4, pointRadius: 0, spanGaps: false, order: 3 },
        { label: 'series detection (this metric)', type: 'scatter', data: xy(s.series), pointStyle: 'triangle', pointRadius: 7, borderColor: '#c62828', backgroundColor: 'rgba(198, 40, 40, 0.85)', order: 1 },
        { label: 'event anomaly (one request)', type: 'scatter', data: xy(s.events), pointStyle: 'circle', pointRadius: 3.5, borderColor: '#6a1b9a', backgroundColor: 'rgba(106, 27, 154, 0.6)', order: 2 },
        { label: 'incident (shaded)', data: [], borderColor: 'rgba(255, 193, 7, 0.9)', backgroundColor: 'rgba(255, 193, 7, 0.35)', borderWidth: 6 },
      ],
    },
    options: {
      animation: false,
      responsive: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', intersect: false },
      plugins: {
        legend: { position: 'top', labels: { usePointStyle: true, boxHeight: 8 } },
        title: { display: true, text: s.title, align: 'start' },
        incidentShade: { spans: s.incidents },
        // Long replays: the series line is thinned to what the canvas can show (marks are kept).
        decimation: { enabled: true, algorithm: 'lttb', samples: 2000 },
        tooltip: { callbacks: { title: (items) => items.length ? new Date(items[0].parsed.x).toISOString() : '' } },
      },
      scales: {
        x: {
          type: 'linear', min, max,
          title: { display: true, text: 'event time (UTC)' },
          ticks: { autoSkip: false, callback: (v) => timeLabel(v, span) },
          afterBuildTicks: (axis) => {
            axis.ticks = [];
            for (let v = Math.ceil(min / step) * step; v <= max; v += step) axis.ticks.push({ value: v });
          },
        },
        y: { beginAtZero: true, title: { display: true, text: s.unit }, ticks: { maxTicksLimit: 6 } },
      },
    },
    plugins: [incidentShade],
  });
});
`;

/**
 * A self-contained HTML report of a replay: the summary, then per service three charts (requests per
 * minute, latency p95 in ms, error rate in % of requests) drawn with Chart.js inlined into the page,
 * marking series detections of each metric, every event anomaly at its own time and value, and
 * incidents as shaded spans; then the detections table (first 500).
 *
 * @param traces per-service minute series from ReplayEngine.finish()
 * @param incidents spans to shade (event time); none when the replay computed none
 */
export function renderReplayReport(
  title: string,
  traces: SeriesTrace[],
  detections: ReplayDetection[],
  summary: Record<string, unknown>,
  incidents: ReportIncident[] = [],
): string {
  const minuteOf = (iso: string) => {
    const t = Date.parse(iso);
    return t - (t % 60_000);
  };
  const specs: ChartSpec[] = [];
  const sections: string[] = [];
  traces.forEach((tr, s) => {
    const mine = detections.filter((d) => d.service === tr.service);
    const spans = incidents.filter((i) => i.service === tr.service).map((i): [number, number] => [i.start, Math.max(i.end, i.start + 60_000)]);
    const at = (values: (number | null)[]) => new Map(tr.minutes.map((m, i) => [m, values[i]] as const));
    const errorPct = tr.errorRate.map((v) => (v === null ? null : Math.round(v * 100_000) / 1000));
    const charts: { key: string; title: string; unit: string; color: string; values: (number | null)[]; metrics: string[]; eventValue?: (d: ReplayDetection) => number | null }[] = [
      { key: 'count', title: 'Requests', unit: 'requests / min', color: '#1f77b4', values: tr.count, metrics: ['request_count'] },
      {
        key: 'latency',
        title: 'Latency p95',
        unit: 'ms',
        color: '#2e7d32',
        values: tr.latencyP95,
        // The live signal is the minute's typical latency (`latency`); older jobs kept `latency_p95` detections.
        metrics: ['latency', 'latency_p95'],
        eventValue: (d) => (typeof d.duration_ms === 'number' ? d.duration_ms : null),
      },
      { key: 'errors', title: 'Error rate', unit: '% of requests', color: '#ef6c00', values: errorPct, metrics: ['error_rate'] },
    ];
    const canvases: string[] = [];
    for (const c of charts) {
      const byMinute = at(c.values);
      const id = `chart-${s}-${c.key}`;
      specs.push({
        id,
        title: `${tr.service}: ${c.title}`,
        unit: c.unit,
        color: c.color,
        points: tr.minutes.map((m, i) => [m, c.values[i]]),
        series: mine
          .filter((d) => d.kind === 'series' && c.metrics.includes(String(d.metric)))
          .map((d) => [minuteOf(d.timestamp), byMinute.get(minuteOf(d.timestamp)) ?? null]),
        // Every event anomaly at its own time: on the latency chart at its duration, elsewhere on the minute's value.
        events: mine
          .filter((d) => d.kind === 'event')
          .map((d) => [Date.parse(d.timestamp), c.eventValue?.(d) ?? byMinute.get(minuteOf(d.timestamp)) ?? null]),
        incidents: spans,
      });
      canvases.push(`<canvas id="${id}" width="1000" height="260" role="img" aria-label="${esc(`${tr.service}: ${c.title} (${c.unit})`)}"></canvas>`);
    }
    const counts = `${mine.filter((d) => d.kind === 'event').length} event anomalies, ${mine.filter((d) => d.kind === 'series').length} series detections, ${spans.length} incidents`;
    sections.push(`<section><h2>${esc(tr.service)}</h2><p class="counts">${esc(counts)}</p>${canvases.join('')}</section>`);
  });
  const rows = detections
    .slice(0, 500)
    .map(
      (d) =>
        `<tr class="${d.kind}"><td>${esc(d.timestamp)}</td><td>${esc(d.service)}</td><td>${d.kind}</td><td>${esc(d.metric ?? '')}</td><td>${d.score.toFixed(4)}</td>` +
        `<td>${esc(String((d.explanation as { summary?: string } | undefined)?.summary ?? (d.metric ? `${d.metric} ${d.value} (expected ${d.expected})` : '')))}</td></tr>`,
    )
    .join('');
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>` +
    `<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}canvas{display:block;margin:6px 0 14px}` +
    `.counts{font-size:12px;color:#555}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px}` +
    `tr.series td:nth-child(3){color:#c62828}tr.event td:nth-child(3){color:#6a1b9a}</style></head><body>` +
    `<h1>${esc(title)}</h1><pre>${esc(JSON.stringify(summary, null, 2))}</pre>${sections.join('')}` +
    `<h2>Detections</h2><table><thead><tr><th>time</th><th>service</th><th>kind</th><th>metric</th><th>score</th><th>why</th></tr></thead><tbody>${rows}</tbody></table>` +
    `<script id="report-data" type="application/json">${scriptJson(specs)}</script>` +
    `<script>${chartJsSource()}</script><script>${PAGE_SCRIPT}</script>` +
    `</body></html>`
  );
}
