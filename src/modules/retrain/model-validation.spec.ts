import { Rng } from '../detection/core/rng';
import { LogEvent } from '../detection/features/log-event';
import { AnomalyModel, DEFAULT_MODEL_PARAMS } from '../detection/model/anomaly-model';
import { anomalyBound, validateChallenger } from './model-validation';

const T0 = Date.UTC(2025, 10, 14);
function traffic(n: number, seed: number, medianMs = 100): LogEvent[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const g = Math.sqrt(-2 * Math.log(Math.max(rng.nextDouble(), 1e-12))) * Math.cos(2 * Math.PI * rng.nextDouble());
    return {
      timestamp: new Date(T0 + Math.floor(rng.nextDouble() * 86_400_000)),
      service: 'api',
      durationMs: medianMs * Math.exp(0.3 * g),
      statusCode: 200,
      bytes: 5000,
      metadata: {},
    };
  });
}
const params = { ...DEFAULT_MODEL_PARAMS, minServiceRows: 100_000 };

describe(anomalyBound.name, () => {
  it('should allow twice the rate plus three Poisson deviations', () => {
    expect(anomalyBound(0, 0.01)).toBe(0);
    expect(anomalyBound(100, 0.01)).toBe(6);
    expect(anomalyBound(10_000, 0.01)).toBe(242);
  });
});

describe(validateChallenger.name, () => {
  const normal = AnomalyModel.train(traffic(2000, 1), params);
  const holdout = traffic(300, 2);

  it('should pass a model of the same traffic, with figures for both', () => {
    const sut = validateChallenger(
      AnomalyModel.train(traffic(2000, 3), params),
      { version: 4, model: normal },
      { holdout, confirmed: [], falsePositives: [] },
      0.01,
    );
    expect(sut).toMatchObject({ passed: true, failures: [], holdout: 300, maxAnomalies: 13, champion: { version: 4 } });
    expect(sut.challenger.flagged).toBeLessThanOrEqual(13);
  });

  it('should fail a model that flags false positives the active one does not', () => {
    // The active model learnt that 400 ms happens; the challenger never saw it.
    const champion = AnomalyModel.train([...traffic(2000, 4), ...traffic(200, 5, 400)], params);
    const falsePositives = traffic(20, 6, 400).map((e) => ({ ...e, durationMs: 420 }));
    const sut = validateChallenger(
      normal,
      { version: 7, model: champion },
      { holdout, confirmed: [], falsePositives },
      0.01,
    );
    expect(sut.passed).toBe(false);
    expect(sut.failures).toEqual([
      `flags 20 of 20 anomalies marked false positive (v7: ${sut.champion!.falsePositivesFlagged})`,
    ]);
  });

  it('should fail a model that misses confirmed anomalies, and pass without feedback to check', () => {
    const slow = traffic(500, 7, 800);
    const learntIncident = AnomalyModel.train([...traffic(1500, 8), ...slow], params);
    const confirmed = traffic(10, 9, 800);
    expect(
      validateChallenger(
        learntIncident,
        { version: 1, model: normal },
        { holdout, confirmed, falsePositives: [] },
        0.01,
      ).failures,
    ).toEqual(['misses 10 of 10 confirmed anomalies that v1 flags']);
    expect(validateChallenger(learntIncident, null, { holdout, confirmed, falsePositives: [] }, 0.01).failures).toEqual(
      ['misses 10 of 10 confirmed anomalies'],
    );
    // Anomalies of a service it was not trained on are a baseline's to judge, not its.
    const elsewhere = confirmed.map((e) => ({ ...e, service: 'other' }));
    expect(
      validateChallenger(learntIncident, null, { holdout, confirmed: elsewhere, falsePositives: [] }, 0.01),
    ).toMatchObject({ passed: true, confirmed: 0 });
  });
});
