import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Job, Queue } from 'bull';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { withLogContext } from '../../common/logging/log-context';
import { AppConfig } from '../../config/app-config';
import {
  AttemptOutcome,
  NotificationsForWorker,
  NotificationsRepository,
} from '../../database/repositories/notifications.repository';
import type { StoredDelivery, StoredNotification } from '../../database/schemas';
import { EmailNotifications } from '../email/email-notifications.service';
import type { NotificationEvent } from '../notification-event';
import {
  DELIVERY_JOB_DEFAULTS,
  deliveryJobId,
  DeliveryJobData,
  NOTIFICATIONS_QUEUE,
  retryDelayMs,
} from '../notifications.constants';
import { postWebhook } from './webhook-sender';

/** After an attempt cut by the shutdown, the in-flight ones get this long to record it. */
const CUT_GRACE_MS = 2000;

/**
 * Consumes the notifications queue (worker role only), NOTIFY_CONCURRENCY jobs at once, apart from
 * the rerun queue and its WORKER_CONCURRENCY. A job is one attempt of one delivery: it claims the
 * attempt in MongoDB (conditional on the delivery's attempt count, and on no other attempt being
 * under way), makes it, records how it ended (conditional again), and on a failure adds the job of
 * the next attempt, delayed by the back-off (NOTIFY_RETRY_DELAY_MS doubling up to 5 min), until
 * NOTIFY_RETRY_MS after the event, when the delivery is given up.
 *
 * At least once: a worker killed mid-attempt leaves its claim (`inFlightUntil` = the claim +
 * NOTIFY_TIMEOUT_MS + WORKER_LEASE_MS); once it passed, the sweeper adds the next attempt's job.
 * Bull's stalled check also hands the dead worker's job to another, which finds the attempt taken
 * and ends. The receiver gets the same `X-Webhook-Id` and the same body every time.
 */
@Injectable()
export class NotificationsProcessor implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(NotificationsProcessor.name);
  private readonly aborter = new AbortController();
  private active = 0;
  private stopping = false;

  constructor(
    private readonly config: AppConfig,
    @Inject(NotificationsRepository) private readonly notifications: NotificationsForWorker,
    private readonly email: EmailNotifications,
    @InjectQueue(NOTIFICATIONS_QUEUE) private readonly queue: Queue<DeliveryJobData>,
  ) {
    setMaxListeners(0, this.aborter.signal);
  }

  onModuleInit(): void {
    void this.queue.process('*', this.config.NOTIFY_CONCURRENCY, (job: Job<DeliveryJobData>) => this.handle(job));
  }

  private async handle(job: Job<DeliveryJobData>): Promise<void> {
    this.active++;
    try {
      if (this.stopping) return; // left for the sweeper (the delivery stays pending)
      await this.attempt(job.data);
    } catch (error) {
      // MongoDB away...: the delivery stays pending (its claim, if any, expires): the sweeper retries it.
      this.logger.warn(
        `Notification job ${String(job.id)} failed (the sweeper will retry it): ${(error as Error).message}`,
      );
    } finally {
      this.active--;
    }
  }

  /** One attempt of delivery `index` of event `eventId`, if it is still the one to make. */
  private async attempt({ eventId, index, attempts }: DeliveryJobData): Promise<void> {
    const found = await this.notifications.findById(eventId);
    const current = found?.deliveries[index];
    // Delivered, given up, or this attempt already made (or under way) through another job.
    if (!found || !current || current.state !== 'pending' || current.attempts !== attempts) return;
    const now = new Date();
    const deadline = found.createdAt.getTime() + this.config.NOTIFY_RETRY_MS;
    if (attempts > 0 && now.getTime() >= deadline) {
      await this.notifications.recordAttempt(eventId, index, attempts, this.givenUp(current.lastError));
      return;
    }
    const inFlightUntil = new Date(now.getTime() + this.config.NOTIFY_TIMEOUT_MS + this.config.WORKER_LEASE_MS);
    const claimed = await this.notifications.claim(eventId, index, attempts, now, inFlightUntil);
    if (!claimed) return;
    const delivery = claimed.deliveries[index];
    const made = attempts + 1;
    const context = { notificationId: eventId, ...(claimed.taskId ? { taskId: claimed.taskId } : {}) };
    const outcome = await withLogContext(context, () => this.send(claimed, index, delivery)).then(
      (skipped): AttemptOutcome => ({ state: 'delivered', deliveredAt: new Date(), ...(skipped ? { skipped } : {}) }),
      (error: Error) => this.failed(delivery, made, deadline, error),
    );
    if (!(await this.notifications.recordAttempt(eventId, index, made, outcome))) return;
    if (outcome.state === 'pending' && outcome.nextAttemptAt) {
      await this.next(claimed, index, made, outcome.nextAttemptAt.getTime() - Date.now());
    } else if (outcome.state === 'given-up') {
      this.logger.warn(`${this.describe(claimed, delivery)}: given up after ${made} attempts: ${outcome.lastError}`);
    }
  }

  /** Makes the attempt; resolves (with the e-mails' skipped recipients) when it was delivered. */
  private async send(
    notification: StoredNotification,
    index: number,
    delivery: StoredDelivery,
  ): Promise<AttemptOutcome['skipped']> {
    if (delivery.kind === 'webhook') {
      await postWebhook({
        url: delivery.url,
        eventId: notification._id,
        body: notification.body,
        secret: this.config.WEBHOOK_SECRET,
        timeoutMs: this.config.NOTIFY_TIMEOUT_MS,
        signal: this.aborter.signal,
      });
      return undefined;
    }
    if (!this.email.configured) throw new Error('e-mail is not configured in this worker (SMTP_HOST)');
    const { skipped } = await this.email.deliver(
      notification.event as unknown as NotificationEvent,
      delivery.groups,
      new Set(delivery.sent),
      (address) => this.notifications.addSent(notification._id, index, address),
    );
    return skipped;
  }

  /** A failed attempt: retried after the back-off, or given up once NOTIFY_RETRY_MS has passed. */
  private failed(delivery: StoredDelivery, made: number, deadline: number, error: Error): AttemptOutcome {
    const lastError = error.message || String(error);
    const now = Date.now();
    if (now >= deadline) return this.givenUp(lastError);
    this.logger.debug(`${delivery.kind} attempt ${made} failed (retried): ${lastError}`);
    const nextAttemptAt = new Date(Math.min(now + retryDelayMs(this.config.NOTIFY_RETRY_DELAY_MS, made), deadline));
    return { state: 'pending', lastError, nextAttemptAt };
  }

  private givenUp(lastError = 'not delivered'): AttemptOutcome {
    return {
      state: 'given-up',
      lastError: `${lastError} (given up: NOTIFY_RETRY_MS = ${this.config.NOTIFY_RETRY_MS} ms since the event)`,
      givenUpAt: new Date(),
    };
  }

  /** Adds the next attempt's job; when Redis refuses it, the sweeper adds it once it is due. */
  private async next(notification: StoredNotification, index: number, attempts: number, delayMs: number) {
    const kind = notification.deliveries[index].kind;
    const jobId = deliveryJobId(kind, notification._id, index, attempts);
    await this.queue
      .add(
        kind,
        { eventId: notification._id, index, attempts },
        { jobId, delay: Math.max(0, delayMs), ...DELIVERY_JOB_DEFAULTS },
      )
      .catch((error: Error) => this.logger.warn(`Could not queue ${jobId} (the sweeper will): ${error.message}`));
  }

  private describe(notification: StoredNotification, delivery: StoredDelivery): string {
    const where = delivery.kind === 'webhook' ? new URL(delivery.url).host : `groups ${delivery.groups.join(', ')}`;
    return `${String(notification.event.type)} notification ${notification._id} (${delivery.kind} to ${where})`;
  }

  /**
   * Stops taking jobs, lets attempts under way finish (at most WORKER_SHUTDOWN_MS), then cuts the
   * webhooks still waiting: they are recorded as failed and retried (by another worker).
   */
  async onModuleDestroy(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.queue.pause(true, true).catch(() => undefined);
    const deadline = Date.now() + this.config.WORKER_SHUTDOWN_MS;
    while (this.active > 0 && Date.now() < deadline) await sleep(20);
    if (this.active === 0) return;
    this.aborter.abort();
    const cutDeadline = Date.now() + CUT_GRACE_MS;
    while (this.active > 0 && Date.now() < cutDeadline) await sleep(20);
  }
}
