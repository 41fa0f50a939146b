import { Injectable, Logger } from '@nestjs/common';
import { DetectionRow } from '../store/event.repository';

export type AnomalyListener = (tenantId: string, detections: DetectionRow[]) => void | Promise<void>;

/**
 * In-process notification of anomalies just stored (committed), for modules that react to them
 * (alerts, the retrain counter). A listener's failure is logged and never reaches the ingest
 * request. Delivery is best effort: a listener that must not miss anything also reconciles from
 * the `detections` table.
 */
@Injectable()
export class AnomalyBus {
  private readonly logger = new Logger(AnomalyBus.name);
  private readonly listeners = new Set<AnomalyListener>();

  subscribe(listener: AnomalyListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(tenantId: string, detections: DetectionRow[]): void {
    if (!detections.length) return;
    for (const listener of this.listeners) {
      Promise.resolve()
        .then(() => listener(tenantId, detections))
        .catch((e) => this.logger.error(`anomaly listener failed for tenant ${tenantId}: ${(e as Error).message}`));
    }
  }
}
