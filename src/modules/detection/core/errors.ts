/**
 * Base class for invalid input to the numeric detection core (bad shapes, non-finite values,
 * out-of-range options). Callers can catch this one type for every core helper.
 */
export class InvalidInputError extends Error {
  /** @param message names the offending argument and, where it applies, the row and column. */
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Invalid input or options given to {@link IsolationForest} (fit, scoring, (de)serialisation). */
export class IsolationForestError extends InvalidInputError {}
