import type { AlertIncidentSnapshot, AlertKind, AlertSample, AlertSeverity } from '../../store/alert.repository';

/** A Slack incoming-webhook body: Block Kit blocks plus the plain-text fallback for notifications. */
export interface SlackMessage {
  text: string;
  blocks: Record<string, unknown>[];
}

/** What a message says: one alert (open, re-notify or recovery) and its incident. */
export interface AlertMessageInput {
  tenant: string;
  alertId: string;
  service: string;
  kind: AlertKind;
  severity: AlertSeverity;
  /** Anomalies this message groups (the whole incident for a recovery). */
  anomalyCount: number;
  firstSeen: Date;
  lastSeen: Date;
  incident: { anomalyCount: number; firstSeen: Date; lastSeen: Date };
  worst: AlertSample | null;
  /** ALERT_LINK_TEMPLATE, if set. */
  linkTemplate?: string;
  /** Quiet time that made the service count as recovered. */
  cooldownMs: number;
  /** Recovery: events of the service scored normal since its last anomaly (capped at 100,000). */
  normalSince?: number;
}

const SEVERITY_ICON: Record<AlertSeverity, string> = {
  critical: ':red_circle:',
  warning: ':large_orange_circle:',
  info: ':large_blue_circle:',
};
/** Margin around the incident in the link's time range, so the graph shows the before and after. */
const LINK_MARGIN_MS = 5 * 60_000;

/** Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping). */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** A time shown in each reader's own time zone, with a UTC fallback. */
const when = (d: Date) =>
  `<!date^${Math.floor(d.getTime() / 1000)}^{date_short_pretty} {time_secs}|${d.toISOString()}>`;
const fmt = (v: number) => (Math.abs(v) >= 100 ? Math.round(v).toString() : (Math.round(v * 100) / 100).toString());

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  return `${(m / 60).toFixed(1)} h`;
}

/** Anomalies per minute over the span they arrived in (a burst within a minute counts per minute). */
function rate(count: number, from: Date, to: Date): string {
  const minutes = Math.max(1, (to.getTime() - from.getTime()) / 60_000);
  return `${fmt(count / minutes)}/min`;
}

/**
 * The link of ALERT_LINK_TEMPLATE with its placeholders filled in (URL-encoded): {tenant},
 * {service}, {incident_id}, {alert_id}, {from} and {to} (epoch ms, the incident with 5 minutes either side),
 * {from_iso} and {to_iso}.
 */
export function alertLink(
  template: string,
  v: { tenant: string; service: string; alertId: string; incidentId?: string; from: Date; to: Date },
): string {
  const from = new Date(v.from.getTime() - LINK_MARGIN_MS);
  const to = new Date(v.to.getTime() + LINK_MARGIN_MS);
  const values: Record<string, string> = {
    incident_id: v.incidentId ?? v.alertId,
    tenant: v.tenant,
    service: v.service,
    alert_id: v.alertId,
    from: String(from.getTime()),
    to: String(to.getTime()),
    from_iso: from.toISOString(),
    to_iso: to.toISOString(),
  };
  return template.replace(/\{(incident_id|tenant|service|alert_id|from|to|from_iso|to_iso)\}/g, (_, k: string) =>
    encodeURIComponent(values[k]),
  );
}

/** The key values of the worst anomaly, as Block Kit fields. */
function keyValues(w: AlertSample | null): string[] {
  if (!w) return [];
  const out: string[] = [];
  const durationFeature = w.explanation?.features?.find((f) => f.name === 'duration_ms');
  if (w.kind === 'series' && w.metric) {
    out.push(
      `*${esc(w.metric)}*\n${w.value === null || w.value === undefined ? '–' : fmt(w.value)} (expected ${w.expected === null || w.expected === undefined ? '–' : fmt(w.expected)})`,
    );
  } else if (w.durationMs !== null) {
    const p50 = durationFeature?.p50 ?? null;
    out.push(`*Latency*\n${fmt(w.durationMs)} ms${p50 !== null ? ` (usual ${fmt(p50)} ms)` : ''}`);
  }
  if (w.statusCode !== null) out.push(`*Status*\n${w.statusCode}`);
  return out;
}

/** The explanation: its summary and the features that drove it, with their share. */
function why(w: AlertSample | null): string | null {
  const e = w?.explanation;
  if (!e?.summary) return null;
  const features = (e.features ?? []).slice(0, 3).map((f) => {
    const ref = [f.p50 !== null ? `p50 ${fmt(f.p50)}` : null, f.p99 !== null ? `p99 ${fmt(f.p99)}` : null]
      .filter(Boolean)
      .join(', ');
    return `• \`${esc(f.name)}\` ${f.value === null ? 'missing' : fmt(f.value)}${ref ? ` (${ref})` : ''} — ${Math.round(f.contribution * 100)}%`;
  });
  return clip(`*Why:* ${esc(e.summary)}${features.length ? `\n${features.join('\n')}` : ''}`, 2900);
}

const SIGNAL_LABEL: Record<string, string> = {
  traffic: 'Traffic',
  errors: 'Server errors',
  latency: 'Latency',
  payload: 'Response size',
  anomalies: 'Anomalous requests',
};

/** One line per signal: what changed by how much against which baseline, and since when. */
function signalLines(inc: AlertIncidentSnapshot): string {
  return inc.signals
    .slice(0, 5)
    .map((s) => `• *${SIGNAL_LABEL[s.signal] ?? esc(s.signal)}* (${s.severity}): ${esc(s.summary ?? `${s.value ?? '–'} vs ${s.expected ?? '–'}`)} — since ${when(new Date(s.firstAt))}`)
    .join('\n');
}

/**
 * The Block Kit message of an incident (issue 12): opening, escalation, reminder or recovery, with
 * the service, since when (event time of the first evidence), what changed by how much against
 * which baseline (one line per signal), severity, the incident id and a link (ALERT_LINK_TEMPLATE).
 */
function buildIncidentMessage(a: AlertMessageInput, inc: AlertIncidentSnapshot): SlackMessage {
  const icon = SEVERITY_ICON[inc.severity];
  const started = new Date(inc.startedAt);
  const top = inc.signals[0];
  const headline = top?.summary ?? 'anomalous';
  let title: string;
  let intro: string;
  let text: string;
  if (a.kind === 'recovery') {
    const ended = new Date(inc.endedAt ?? inc.lastEvidenceAt);
    title = `:white_check_mark: Recovered: ${a.service}`;
    intro =
      `*${esc(a.service)}* is back to normal since ${when(ended)}: no evidence for ${duration(a.cooldownMs)}. ` +
      `The incident lasted ${duration(ended.getTime() - started.getTime())} (from ${when(started)}).`;
    text = `Recovered: ${a.service} (tenant ${a.tenant}) — incident ${inc.id} lasted ${duration(ended.getTime() - started.getTime())}`;
  } else if (a.kind === 'escalate') {
    title = `${icon} Escalated (${inc.severity}): ${a.service}`;
    intro = `*${esc(a.service)}* incident since ${when(started)} got worse: ${inc.signals.length} signal${inc.signals.length === 1 ? '' : 's'}, now ${inc.severity}.`;
    text = `[${inc.severity}] Escalated: ${a.service} (tenant ${a.tenant}) since ${inc.startedAt} — ${inc.signals.map((s) => s.summary).join('; ')}`;
  } else if (a.kind === 'renotify') {
    title = `${icon} Still going on: ${a.service}`;
    intro = `*${esc(a.service)}* has been anomalous since ${when(started)} (${duration(new Date(inc.lastEvidenceAt).getTime() + 60_000 - started.getTime())}).`;
    text = `[${inc.severity}] Still going on: ${a.service} (tenant ${a.tenant}) since ${inc.startedAt} — ${headline}`;
  } else {
    title = `${icon} Incident: ${a.service}`;
    intro = `*${esc(a.service)}*: ${esc(headline)}, since ${when(started)}.`;
    text = `[${inc.severity}] Incident: ${a.service} (tenant ${a.tenant}) since ${inc.startedAt} — ${headline}`;
  }
  const fields = [
    `*Tenant*\n${esc(a.tenant)}`,
    `*Service*\n${esc(a.service)}`,
    `*Severity*\n${inc.severity}`,
    `*Since (event time)*\n${when(started)}`,
    `*Detected*\n${when(new Date(inc.detectedAt))}`,
    ...(a.kind === 'recovery' && inc.endedAt ? [`*Ended*\n${when(new Date(inc.endedAt))}`] : []),
  ];
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(title, 150), emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: clip(intro, 2900) } },
    { type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: clip(f, 2000) })) },
  ];
  if (a.kind !== 'recovery' && inc.signals.length) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(`*What changed*\n${signalLines(inc)}`, 2900) } });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `incident \`${inc.id}\` · alert \`${a.alertId}\`` }] });
  if (a.linkTemplate) {
    const url = alertLink(a.linkTemplate, {
      tenant: a.tenant,
      service: a.service,
      alertId: a.alertId,
      incidentId: inc.id,
      from: started,
      to: new Date(inc.endedAt ?? new Date(inc.lastEvidenceAt).getTime() + 60_000),
    });
    if (url.length <= 3000) blocks.push({ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open incident' }, url }] });
  }
  return { text: clip(text, 3000), blocks };
}

/** The Block Kit message for an alert: an incident's message, or (rows from before incidents) a single alert's. */
export function buildAlertMessage(a: AlertMessageInput): SlackMessage {
  const w = a.worst;
  if (w?.incident) return buildIncidentMessage(a, w.incident);
  const icon = SEVERITY_ICON[a.severity];
  let title: string;
  let text: string;
  let intro: string;
  if (a.kind === 'recovery') {
    const grouped =
      `The incident grouped ${a.incident.anomalyCount} anomal${a.incident.anomalyCount === 1 ? 'y' : 'ies'} ` +
      `over ${duration(a.incident.lastSeen.getTime() - a.incident.firstSeen.getTime())}.`;
    if (a.normalSince === 0) {
      // No anomaly, but no traffic either: not the same thing as healthy.
      title = `:grey_question: Quiet: ${a.service}`;
      intro =
        `*${esc(a.service)}* has had no anomaly for ${duration(a.cooldownMs)}, but no request either since the last one: ` +
        `it may be down, or its logs may not be reaching us. ${grouped}`;
      text = `Quiet: ${a.service} (tenant ${a.tenant}) has sent no request since its last anomaly`;
    } else {
      const traffic =
        a.normalSince === undefined
          ? ''
          : ` ${a.normalSince >= 100_000 ? '100,000+' : a.normalSince.toLocaleString('en-US')} request${a.normalSince === 1 ? '' : 's'} scored normal since.`;
      title = `:white_check_mark: Recovered: ${a.service}`;
      intro = `*${esc(a.service)}* is back to normal: no anomaly for ${duration(a.cooldownMs)}.${traffic} ${grouped}`;
      text = `Recovered: ${a.service} (tenant ${a.tenant}) after ${a.incident.anomalyCount} anomalies`;
    }
  } else if (a.kind === 'renotify') {
    title = `${icon} Still anomalous: ${a.service}`;
    intro =
      `*${esc(a.service)}* is still anomalous, ${duration(a.lastSeen.getTime() - a.incident.firstSeen.getTime())} after it started: ` +
      `${a.incident.anomalyCount} anomalies so far.`;
    text = `[${a.severity}] Still anomalous: ${a.service} (tenant ${a.tenant}), ${a.incident.anomalyCount} anomalies so far${w?.explanation?.summary ? ` — ${w.explanation.summary}` : ''}`;
  } else {
    title = `${icon} Anomaly: ${a.service}`;
    intro = `*${esc(a.service)}* has ${a.anomalyCount === 1 ? 'an anomaly' : `${a.anomalyCount} anomalies`}.`;
    text = `[${a.severity}] Anomaly: ${a.service} (tenant ${a.tenant})${w?.explanation?.summary ? ` — ${w.explanation.summary}` : ''}`;
  }
  const inMessage =
    a.kind === 'recovery' ? a.incident : { anomalyCount: a.anomalyCount, firstSeen: a.firstSeen, lastSeen: a.lastSeen };
  const fields = [
    `*Tenant*\n${esc(a.tenant)}`,
    `*Service*\n${esc(a.service)}`,
    `*Severity*\n${a.severity}`,
    ...(w ? [`*Score*\n${fmt(w.score)}`] : []),
    `*Anomalies*\n${inMessage.anomalyCount}${a.kind === 'renotify' ? ` since the last message (${a.incident.anomalyCount} in all)` : ''} · ${rate(inMessage.anomalyCount, inMessage.firstSeen, inMessage.lastSeen)}`,
    `*First seen*\n${when(a.kind === 'open' ? a.firstSeen : a.incident.firstSeen)}`,
    `*Last seen*\n${when(a.kind === 'recovery' ? a.incident.lastSeen : a.lastSeen)}`,
    ...(a.kind === 'recovery' ? [] : keyValues(w)),
  ].slice(0, 10);

  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(title, 150), emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: intro } },
    { type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: clip(f, 2000) })) },
  ];
  const reason = a.kind === 'recovery' ? null : why(w);
  if (reason) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: reason } });
  const scorer = w ? (w.scorer === 'baseline' ? 'cold-start baseline' : `model v${w.modelVersion ?? '?'}`) : null;
  blocks.push({
    type: 'context',
    elements: [
      {
        type: 'mrkdwn',
        text: [scorer ? `Scored by ${scorer}` : null, `alert \`${a.alertId}\``].filter(Boolean).join(' · '),
      },
    ],
  });
  if (a.linkTemplate) {
    const url = alertLink(a.linkTemplate, {
      tenant: a.tenant,
      service: a.service,
      alertId: a.alertId,
      from: a.incident.firstSeen,
      to: a.kind === 'recovery' ? a.incident.lastSeen : a.lastSeen,
    });
    if (url.length <= 3000) {
      blocks.push({
        type: 'actions',
        elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open logs' }, url }],
      });
    }
  }
  return { text: clip(text, 3000), blocks };
}
