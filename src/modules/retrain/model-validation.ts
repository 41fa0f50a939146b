import { LogEvent } from '../detection/features/log-event';
import { AnomalyModel } from '../detection/model/anomaly-model';

/**
 * The most anomalies a model may raise on `n` normal events and still pass, for an expected share
 * `rate`: twice the rate (what the soak tolerates in any window) plus three standard deviations of
 * a Poisson count with that mean, so that a small sample is not failed on chance:
 * floor(2·rate·n + 3·√(2·rate·n)).
 */
export function anomalyBound(n: number, rate: number): number {
  const mean = 2 * rate * n;
  return Math.floor(mean + 3 * Math.sqrt(mean));
}

/** A model's figures on the validation sets. */
export interface ModelFigures {
  /** Anomalies among the held-out events, and their share. */
  flagged: number;
  anomalyRate: number;
  /** Confirmed anomalies it flags. */
  confirmedFlagged: number;
  /** Anomalies marked false positive that it flags. */
  falsePositivesFlagged: number;
}

/** What GET /models shows under `validation` for a retrained version. */
export interface ValidationReport {
  /** Held-out recent events (not trained on) and the most anomalies allowed on them. */
  holdout: number;
  holdoutFrom: string | null;
  holdoutTo: string | null;
  maxAnomalies: number;
  contamination: number;
  confirmed: number;
  falsePositives: number;
  challenger: ModelFigures;
  /** The active model's figures on the same sets (null without one). */
  champion: (ModelFigures & { version: number }) | null;
  passed: boolean;
  /** Every rule it failed, in words; empty when it passed. */
  failures: string[];
}

export interface ValidationSets {
  holdout: readonly LogEvent[];
  confirmed: readonly LogEvent[];
  falsePositives: readonly LogEvent[];
}

function flags(model: AnomalyModel, events: readonly LogEvent[]): boolean[] {
  return events.length ? model.score(events, { explain: false }).map((s) => s.prediction === -1) : [];
}

function figures(model: AnomalyModel, sets: ValidationSets): { figures: ModelFigures; confirmed: boolean[] } {
  const holdout = flags(model, sets.holdout);
  const confirmed = flags(model, sets.confirmed);
  const flagged = holdout.filter(Boolean).length;
  return {
    figures: {
      flagged,
      anomalyRate: holdout.length ? Math.round((flagged / holdout.length) * 1e4) / 1e4 : 0,
      confirmedFlagged: confirmed.filter(Boolean).length,
      falsePositivesFlagged: flags(model, sets.falsePositives).filter(Boolean).length,
    },
    confirmed,
  };
}

/**
 * Champion/challenger validation of a retrained model on traffic it was not trained on:
 * 1. its anomalies on the held-out recent events stay within {@link anomalyBound} of
 *    `contamination` (a model that learnt a few minutes of the day flags half of the next hour);
 * 2. it flags every confirmed anomaly that the active model flags (all of them without one): a
 *    model trained on incident traffic has learnt the incident as normal;
 * 3. it flags no more of the anomalies marked false positive than the active model does.
 * Feedback on services the challenger does not know (left out of its training) is not counted.
 * Time features need no rule here: the model turns them off itself when its training window does
 * not cover their cycle.
 */
export function validateChallenger(
  challenger: AnomalyModel,
  champion: { version: number; model: AnomalyModel } | null,
  sets: ValidationSets,
  contamination: number,
): ValidationReport {
  // Feedback on services the challenger never saw is not its to answer: a baseline would score them.
  const known = (list: readonly LogEvent[]) => list.filter((e) => challenger.knowsService(e.service));
  sets = { holdout: sets.holdout, confirmed: known(sets.confirmed), falsePositives: known(sets.falsePositives) };
  const mine = figures(challenger, sets);
  const theirs = champion ? figures(champion.model, sets) : null;
  const maxAnomalies = anomalyBound(sets.holdout.length, contamination);
  const failures: string[] = [];
  const c = mine.figures;
  if (c.flagged > maxAnomalies) {
    failures.push(
      `flags ${c.flagged} of ${sets.holdout.length} recent held-out events (${(c.anomalyRate * 100).toFixed(1)}%), ` +
        `more than the ${maxAnomalies} allowed at MODEL_CONTAMINATION ${contamination}`,
    );
  }
  const missed = sets.confirmed.filter((_, i) => !mine.confirmed[i] && (theirs ? theirs.confirmed[i] : true)).length;
  if (missed) {
    failures.push(
      `misses ${missed} of ${sets.confirmed.length} confirmed anomalies${theirs ? ` that v${champion!.version} flags` : ''}`,
    );
  }
  if (theirs && c.falsePositivesFlagged > theirs.figures.falsePositivesFlagged) {
    failures.push(
      `flags ${c.falsePositivesFlagged} of ${sets.falsePositives.length} anomalies marked false positive (v${champion!.version}: ${theirs.figures.falsePositivesFlagged})`,
    );
  }
  let from = Infinity;
  let to = -Infinity;
  for (const e of sets.holdout) {
    from = Math.min(from, e.timestamp.getTime());
    to = Math.max(to, e.timestamp.getTime());
  }
  return {
    holdout: sets.holdout.length,
    holdoutFrom: sets.holdout.length ? new Date(from).toISOString() : null,
    holdoutTo: sets.holdout.length ? new Date(to).toISOString() : null,
    maxAnomalies,
    contamination,
    confirmed: sets.confirmed.length,
    falsePositives: sets.falsePositives.length,
    challenger: c,
    champion: theirs ? { version: champion!.version, ...theirs.figures } : null,
    passed: failures.length === 0,
    failures,
  };
}
