import { RateLimitWindowEntity } from './rate-limit-window.entity';

export * from './rate-limit-window.entity';

/** Every entity of the schema, registered with the data source. */
export const ALL_ENTITIES = [RateLimitWindowEntity];
