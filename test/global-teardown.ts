import { EmbeddedPostgres } from '../src/modules/store/database/embedded-postgres';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __embeddedPg?: EmbeddedPostgres }).__embeddedPg?.stop();
}
