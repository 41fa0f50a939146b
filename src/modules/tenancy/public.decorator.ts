import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'tenancy:isPublic';

/** Opts a route out of the API-key guard. Only health, docs and /prom are public. */
export const Public = () => SetMetadata(IS_PUBLIC, true);
