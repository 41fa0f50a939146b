import { alertLink, AlertMessageInput, buildAlertMessage } from './slack-message';

const first = new Date('2025-11-14T12:00:00Z');
const last = new Date('2025-11-14T12:00:40Z');
const input = (over: Partial<AlertMessageInput> = {}): AlertMessageInput => ({
  tenant: 'marketing',
  alertId: '11111111-2222-3333-4444-555555555555',
  service: 'seo-optimizer',
  kind: 'open',
  severity: 'critical',
  anomalyCount: 50,
  firstSeen: first,
  lastSeen: last,
  incident: { anomalyCount: 50, firstSeen: first, lastSeen: last },
  worst: {
    detectionId: 'd1',
    kind: 'event',
    ts: first.toISOString(),
    score: -0.31,
    durationMs: 1680,
    statusCode: 200,
    scorer: 'model',
    modelVersion: 3,
    explanation: {
      summary: 'duration_ms 1680 is above the training p99 (420)',
      features: [{ name: 'duration_ms', value: 1680, p50: 180, p99: 420, contribution: 0.71 }],
    },
  },
  cooldownMs: 600_000,
  ...over,
});
const text = (m: ReturnType<typeof buildAlertMessage>) => JSON.stringify(m.blocks);

describe('slack message', () => {
  describe(buildAlertMessage.name, () => {
    it('should show tenant, service, severity, score, key values, explanation, count, first/last seen and the scorer', () => {
      const sut = buildAlertMessage(input());
      expect(sut.text).toBe(
        '[critical] Anomaly: seo-optimizer (tenant marketing) — duration_ms 1680 is above the training p99 (420)',
      );
      expect(sut.blocks[0]).toEqual({
        type: 'header',
        text: { type: 'plain_text', text: ':red_circle: Anomaly: seo-optimizer', emoji: true },
      });
      const all = text(sut);
      for (const part of [
        '*Tenant*\\nmarketing',
        '*Severity*\\ncritical',
        '*Score*\\n-0.31',
        '*Anomalies*\\n50 · 50/min',
        '*Latency*\\n1680 ms (usual 180 ms)',
        '*Status*\\n200',
        '*Why:* duration_ms 1680',
        '`duration_ms` 1680 (p50 180, p99 420) — 71%',
        'Scored by model v3',
        '<!date^1763121600^',
      ]) {
        expect(all).toContain(part);
      }
    });

    it('should say how many anomalies since the last message and in all when re-notifying', () => {
      const sut = buildAlertMessage(
        input({
          kind: 'renotify',
          anomalyCount: 7,
          incident: { anomalyCount: 57, firstSeen: new Date(first.getTime() - 3_600_000), lastSeen: last },
        }),
      );
      expect(sut.text).toMatch(/^\[critical\] Still anomalous: seo-optimizer/);
      expect(text(sut)).toContain('7 since the last message (57 in all)');
    });

    it('should announce a recovery with the incident it closes and the normal traffic since', () => {
      const sut = buildAlertMessage(input({ kind: 'recovery', normalSince: 1234 }));
      expect(sut.text).toBe('Recovered: seo-optimizer (tenant marketing) after 50 anomalies');
      expect(text(sut)).toContain(
        'back to normal: no anomaly for 10 min. 1,234 requests scored normal since. The incident grouped 50 anomalies over 40s.',
      );
      expect(text(sut)).not.toContain('*Why:*');
    });

    it('should not call a service without any request since its last anomaly recovered', () => {
      const sut = buildAlertMessage(input({ kind: 'recovery', normalSince: 0 }));
      expect(sut.text).toBe('Quiet: seo-optimizer (tenant marketing) has sent no request since its last anomaly');
      expect(sut.blocks[0]).toMatchObject({ text: { text: ':grey_question: Quiet: seo-optimizer' } });
      expect(text(sut)).toContain('it may be down');
    });

    it('should say a cold-start baseline scored it', () => {
      expect(
        text(buildAlertMessage(input({ worst: { ...input().worst!, scorer: 'baseline', modelVersion: null } }))),
      ).toContain('Scored by cold-start baseline');
    });

    it('should escape Slack control characters', () => {
      const sut = buildAlertMessage(
        input({ worst: { ...input().worst!, explanation: { summary: 'a <b> & c', features: [] } } }),
      );
      expect(text(sut)).toContain('a &lt;b&gt; &amp; c');
    });

    it('should add a button to the ALERT_LINK_TEMPLATE link', () => {
      const sut = buildAlertMessage(
        input({ linkTemplate: 'https://grafana.example/explore?s={service}&from={from}&to={to}' }),
      );
      expect(sut.blocks.at(-1)).toEqual({
        type: 'actions',
        elements: [
          {
            type: 'button',
            text: { type: 'plain_text', text: 'Open logs' },
            url: `https://grafana.example/explore?s=seo-optimizer&from=${first.getTime() - 300_000}&to=${last.getTime() + 300_000}`,
          },
        ],
      });
    });
  });

  describe(alertLink.name, () => {
    it('should fill every placeholder, URL-encoded', () => {
      const sut = alertLink('x?t={tenant}&a={alert_id}&f={from_iso}&u={to_iso}', {
        tenant: 'a b',
        service: 's',
        alertId: 'id',
        from: first,
        to: last,
      });
      expect(sut).toBe('x?t=a%20b&a=id&f=2025-11-14T11%3A55%3A00.000Z&u=2025-11-14T12%3A05%3A40.000Z');
    });
  });

  describe('incident messages', () => {
    const incident = {
      id: '99999999-8888-4777-8666-555555555555',
      severity: 'critical' as const,
      direction: 'up' as const,
      startedAt: '2025-11-14T12:00:00.000Z',
      detectedAt: '2025-11-14T12:01:00.000Z',
      lastEvidenceAt: '2025-11-14T12:05:00.000Z',
      endedAt: null as string | null,
      signals: [
        {
          signal: 'latency', metric: 'latency', severity: 'critical', direction: 'up', firstAt: '2025-11-14T12:00:00.000Z', lastAt: '2025-11-14T12:05:00.000Z',
          value: 1430.5, expected: 236.1, ratio: 6.06, summary: 'typical latency 1430.5 ms over 1 min, ×6.1 the usual 236.1 ms', detections: 6,
        },
      ],
    };
    const withIncident = (over: Partial<AlertMessageInput> = {}, inc = incident) =>
      input({ worst: { ...input().worst!, kind: 'series', scorer: 'series', incident: inc }, ...over });

    it('should say since when (event time), what changed by how much against which baseline, and the incident id', () => {
      const sut = buildAlertMessage(withIncident());
      expect(sut.text).toBe('[critical] Incident: seo-optimizer (tenant marketing) since 2025-11-14T12:00:00.000Z — typical latency 1430.5 ms over 1 min, ×6.1 the usual 236.1 ms');
      const all = text(sut);
      for (const part of ['*Since (event time)*', '<!date^1763121600^', '*Latency* (critical): typical latency 1430.5 ms', 'the usual 236.1 ms', `incident \`${incident.id}\``]) {
        expect(all).toContain(part);
      }
    });

    it('should announce an escalation with its signals, and a recovery with how long it lasted', () => {
      const escalated = buildAlertMessage(withIncident({ kind: 'escalate' }, { ...incident, signals: [...incident.signals, { ...incident.signals[0], signal: 'errors', summary: 'server errors at 35% of 40 requests over 2 min (usual 0.5%)' }] }));
      expect(escalated.blocks[0]).toMatchObject({ text: { text: ':red_circle: Escalated (critical): seo-optimizer' } });
      expect(text(escalated)).toContain('*Server errors* (critical): server errors at 35%');
      const recovered = buildAlertMessage(withIncident({ kind: 'recovery' }, { ...incident, endedAt: '2025-11-14T12:06:00.000Z' }));
      expect(recovered.text).toBe(`Recovered: seo-optimizer (tenant marketing) — incident ${incident.id} lasted 6 min`);
    });

    it('should link to the incident with {incident_id} in ALERT_LINK_TEMPLATE', () => {
      const sut = buildAlertMessage(withIncident({ linkTemplate: 'https://grafana.example/d/x?incident={incident_id}&from={from}' }));
      expect(text(sut)).toContain(`https://grafana.example/d/x?incident=${incident.id}&from=${Date.parse(incident.startedAt) - 300_000}`);
    });
  });
});
