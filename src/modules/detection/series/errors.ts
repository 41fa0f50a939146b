import { InvalidInputError } from '../core/errors';

/**
 * Invalid input, options or serialised state given to the series detectors (a timestamp going
 * back in time, a non-finite value, an unknown state version). Extends the numeric core's
 * {@link InvalidInputError}, so callers can catch either.
 */
export class SeriesDetectorError extends InvalidInputError {}
