import { InjectQueue } from '@nestjs/bull';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { withDeadline } from '../common/deadline';
import { AppConfig } from '../config/app-config';
import { NotificationsForEmitter, NotificationsRepository } from '../database/repositories/notifications.repository';
import type { StoredDelivery, StoredNotification } from '../database/schemas';
import { EmailNotifications } from './email/email-notifications.service';
import type { NotificationEvent, NotificationInput } from './notification-event';
import { DELIVERY_JOB_DEFAULTS, deliveryJobId, DeliveryJobData, NOTIFICATIONS_QUEUE } from './notifications.constants';

/** How long a closing application waits for the events emitted just before to be recorded. */
const DRAIN_MS = 5000;

/**
 * Where the tasks API and the engine say what happened. `emit` never throws and never waits for a
 * delivery: the event is recorded durably and delivered by the notifications worker.
 *
 * `emit` builds the event (a random UUID `id`, `at` now), and, in the background, writes one
 * document to `notifications` (the event, its serialised body, one delivery per WEBHOOK_URLS entry
 * plus one for the e-mails when the event has contact groups and SMTP is configured), then adds one
 * Bull job per delivery. The caller pays for building the event only: the insert and the add are
 * not awaited. Once the insert is done the event is durable: a failed add (Redis away) is repaired
 * by the sweeper. Nothing configured (no WEBHOOK_URLS, no e-mail): nothing is written.
 */
@Injectable()
export class Notifier implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(Notifier.name);
  private readonly recording = new Set<Promise<void>>();

  constructor(
    private readonly config: AppConfig,
    @Inject(NotificationsRepository) private readonly notifications: NotificationsForEmitter,
    private readonly email: EmailNotifications,
    @InjectQueue(NOTIFICATIONS_QUEUE) private readonly queue: Queue<DeliveryJobData>,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.NOTIFY_GROUPS.length && !this.email.configured) {
      this.logger.warn(
        `NOTIFY_GROUPS is set (${this.config.NOTIFY_GROUPS.join(', ')}) but e-mail is not configured (SMTP_HOST): no e-mail will be sent`,
      );
    }
  }

  emit(input: NotificationInput): void {
    try {
      const notification = this.build(input);
      if (!notification) return;
      const work: Promise<void> = this.record(notification).finally(() => this.recording.delete(work));
      this.recording.add(work);
    } catch (error) {
      this.logger.error(`Could not emit a ${input?.type} notification: ${(error as Error).message}`);
    }
  }

  /** The document `emit` writes, or undefined when the event goes nowhere. */
  private build(input: NotificationInput): StoredNotification | undefined {
    const deliveries: StoredDelivery[] = this.config.WEBHOOK_URLS.map((url) => ({
      kind: 'webhook',
      url,
      state: 'pending',
      attempts: 0,
    }));
    const { notify, type, ...fields } = input;
    const groups = [...new Set(notify ?? this.config.NOTIFY_GROUPS)];
    if (groups.length && this.email.configured) {
      deliveries.push({ kind: 'email', groups, state: 'pending', attempts: 0, sent: [], skipped: [] });
    }
    if (!deliveries.length) return undefined;
    const at = new Date();
    // `id`, `type`, `at` first; the body is serialised once: every attempt sends these bytes.
    const event: NotificationEvent = { id: randomUUID(), type, at: at.toISOString(), ...fields };
    const body = JSON.stringify(event);
    return {
      _id: event.id,
      event: JSON.parse(body) as Record<string, unknown>,
      body,
      ...(input.task?.id ? { taskId: input.task.id } : {}),
      deliveries,
      createdAt: at,
    };
  }

  private async record(notification: StoredNotification): Promise<void> {
    const what = `${String(notification.event.type)} notification ${notification._id}`;
    try {
      await this.notifications.insert(notification);
    } catch (error) {
      this.logger.error(`Could not record the ${what} (it is lost): ${(error as Error).message}`);
      return;
    }
    const jobs = notification.deliveries.map((delivery, index) => ({
      name: delivery.kind,
      data: { eventId: notification._id, index, attempts: 0 },
      opts: { jobId: deliveryJobId(delivery.kind, notification._id, index, 0), ...DELIVERY_JOB_DEFAULTS },
    }));
    try {
      await withDeadline(this.queue.addBulk(jobs), this.config.QUEUE_TIMEOUT_MS, 'Redis', 'adding notification jobs');
    } catch (error) {
      this.logger.warn(`Could not queue the ${what} (the sweeper will): ${(error as Error).message}`);
    }
  }

  /** Lets the events emitted just before a shutdown reach MongoDB (and Redis) while both are still open. */
  async beforeApplicationShutdown(): Promise<void> {
    if (!this.recording.size) return;
    await Promise.race([Promise.allSettled([...this.recording]), sleep(DRAIN_MS, undefined, { ref: false })]);
  }
}
