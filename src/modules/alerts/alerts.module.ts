import { Module } from '@nestjs/common';
import { DetectionModule } from '../detection/detection.module';
import { AlertOutboxSender } from './alert-outbox.sender';
import { AlertsController } from './alerts.controller';
import { alertMetricProviders } from './alerts.metrics';
import { AlertsService } from './alerts.service';
import { SilencesController } from './silences.controller';
import { SilencesService } from './silences.service';
import { SlackBotClient } from './slack/slack-bot.client';
import { SlackClient } from './slack/slack.client';

/** Slack alerts: the policy (grouping, cooldown, re-notify, recovery, silences) and the delivery outbox. */
@Module({
  imports: [DetectionModule],
  controllers: [AlertsController, SilencesController],
  providers: [AlertsService, SilencesService, AlertOutboxSender, SlackClient, SlackBotClient, ...alertMetricProviders],
  exports: [AlertsService],
})
export class AlertsModule {}
