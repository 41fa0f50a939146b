import { Module } from '@nestjs/common';
import { DetectionModule } from '../detection/detection.module';
import { AlertOutboxSender } from './alert-outbox.sender';
import { AlertsController } from './alerts.controller';
import { alertMetricProviders } from './alerts.metrics';
import { AlertsService } from './alerts.service';
import { IncidentsController } from './incidents.controller';
import { SilencesController } from './silences.controller';
import { SilencesService } from './silences.service';
import { SlackBotClient } from './slack/slack-bot.client';
import { SlackClient } from './slack/slack.client';

/** Incidents and Slack alerts: the incident policy (open, escalate, re-notify, recovery, silences), the incidents API and the delivery outbox. */
@Module({
  imports: [DetectionModule],
  controllers: [AlertsController, IncidentsController, SilencesController],
  providers: [AlertsService, SilencesService, AlertOutboxSender, SlackClient, SlackBotClient, ...alertMetricProviders],
  exports: [AlertsService],
})
export class AlertsModule {}
