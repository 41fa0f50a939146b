import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Delivery bookkeeping of Slack messages: how each was sent (incoming webhook, or a bot token
 * through chat.postMessage) and, for the bot, the channel and Slack's message timestamp (`ts`,
 * its id in the channel) once known, whether from the answer or found in the channel's history
 * after an attempt with no answer.
 */
export class AlertSlackDelivery1764300410000 implements MigrationInterface {
  name = 'AlertSlackDelivery1764300410000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE alerts ADD COLUMN transport text CHECK (transport IN ('webhook', 'bot'))`);
    await q.query(`ALTER TABLE alerts ADD COLUMN slack_channel text`);
    await q.query(`ALTER TABLE alerts ADD COLUMN slack_ts text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE alerts DROP COLUMN slack_ts`);
    await q.query(`ALTER TABLE alerts DROP COLUMN slack_channel`);
    await q.query(`ALTER TABLE alerts DROP COLUMN transport`);
  }
}
