import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Collection, Filter, UpdateFilter } from 'mongodb';
import { Model } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { DeliveryState, Notification, StoredDelivery, StoredNotification, StoredSkippedRecipient } from '../schemas';
import { CollectionRepository } from './collection-repository';

/** A notification without its body (what the sweeper and GET /notifications read). */
export type NotificationSummary = Omit<StoredNotification, 'body'>;

/** A pending delivery the sweeper found with no attempt under way and its next attempt due. */
export interface DueDelivery {
  eventId: string;
  index: number;
  delivery: StoredDelivery;
}

/** The end of an attempt: what it sets on the delivery (besides clearing the claim). */
export interface AttemptOutcome {
  state: DeliveryState;
  lastError?: string;
  deliveredAt?: Date;
  givenUpAt?: Date;
  nextAttemptAt?: Date;
  skipped?: StoredSkippedRecipient[];
}

/** Most events GET /notifications lists for one task (the newest). */
export const TASK_NOTIFICATIONS_LIMIT = 1000;
/** Most notifications one sweep reads (those with a delivery due; the next sweep reads the rest). */
const SWEEP_BATCH = 1000;

/**
 * Our `notifications` (one document per event, with its deliveries), for `Notifier.emit` (insert),
 * the notifications worker (claims and outcomes of attempts, each conditional on the delivery's
 * attempt count, so a stale worker never overwrites a newer attempt; the sweeper's reads) and
 * GET /notifications. Every operation settles within a lease.
 */
@Injectable()
export class NotificationsRepository extends CollectionRepository<Notification> {
  constructor(@InjectModel(Notification.name) model: Model<Notification>, config: AppConfig) {
    super(model, config);
  }

  private get notifications() {
    return this.collection as unknown as Collection<StoredNotification>;
  }

  async insert(notification: StoredNotification): Promise<void> {
    await this.op('insert', (o) => this.notifications.insertOne(notification, o));
  }

  async findById(id: string): Promise<StoredNotification | null> {
    return this.op('findById', (o) => this.notifications.findOne({ _id: id }, o));
  }

  /**
   * Starts attempt `attempts + 1` of delivery `index`: only while it is pending, still at `attempts`,
   * and no other attempt is under way (`inFlightUntil` passed). Returns the document after the claim,
   * or null when another worker holds it, moved it on, or it is finished.
   */
  async claim(
    id: string,
    index: number,
    attempts: number,
    now: Date,
    inFlightUntil: Date,
  ): Promise<StoredNotification | null> {
    const at = `deliveries.${index}`;
    const filter: Filter<StoredNotification> = {
      _id: id,
      [`${at}.state`]: 'pending',
      [`${at}.attempts`]: attempts,
      $or: [{ [`${at}.inFlightUntil`]: { $exists: false } }, { [`${at}.inFlightUntil`]: { $lte: now } }],
    };
    const update = {
      $inc: { [`${at}.attempts`]: 1 },
      $set: { [`${at}.lastAttemptAt`]: now, [`${at}.inFlightUntil`]: inFlightUntil },
      $unset: { [`${at}.nextAttemptAt`]: '' },
    } as UpdateFilter<StoredNotification>;
    return this.op('claim', (o) =>
      this.notifications.findOneAndUpdate(filter, update, { ...o, returnDocument: 'after' }),
    );
  }

  /**
   * Records how attempt number `attempts` of delivery `index` ended (conditional on it being that
   * attempt's, still pending). Returns whether it applied.
   */
  async recordAttempt(id: string, index: number, attempts: number, outcome: AttemptOutcome): Promise<boolean> {
    const at = `deliveries.${index}`;
    const set: Record<string, unknown> = { [`${at}.state`]: outcome.state };
    const unset: Record<string, ''> = { [`${at}.inFlightUntil`]: '' };
    for (const field of ['lastError', 'deliveredAt', 'givenUpAt', 'nextAttemptAt', 'skipped'] as const) {
      if (outcome[field] !== undefined) set[`${at}.${field}`] = outcome[field];
    }
    if (outcome.state === 'delivered') unset[`${at}.lastError`] = '';
    const { modifiedCount } = await this.op('recordAttempt', (o) =>
      this.notifications.updateOne(
        { _id: id, [`${at}.state`]: 'pending', [`${at}.attempts`]: attempts },
        { $set: set, $unset: unset } as UpdateFilter<StoredNotification>,
        o,
      ),
    );
    return modifiedCount > 0;
  }

  /** An e-mail delivery's address the SMTP server accepted (kept across retries). */
  async addSent(id: string, index: number, address: string): Promise<void> {
    await this.op('addSent', (o) =>
      this.notifications.updateOne(
        { _id: id },
        { $addToSet: { [`deliveries.${index}.sent`]: address } } as UpdateFilter<StoredNotification>,
        o,
      ),
    );
  }

  /**
   * Pending deliveries with no attempt under way whose next attempt is due by `now` (the sweeper
   * re-adds their jobs: lost with Redis, or never added).
   */
  async dueDeliveries(now: Date): Promise<DueDelivery[]> {
    const due = {
      state: 'pending',
      $and: [
        { $or: [{ inFlightUntil: { $exists: false } }, { inFlightUntil: { $lte: now } }] },
        { $or: [{ nextAttemptAt: { $exists: false } }, { nextAttemptAt: { $lte: now } }] },
      ],
    };
    const found = await this.op('dueDeliveries', (o) =>
      this.notifications
        .find({ 'deliveries.state': 'pending', deliveries: { $elemMatch: due } } as Filter<StoredNotification>, {
          ...o,
          projection: { deliveries: 1 },
          limit: SWEEP_BATCH,
        })
        .toArray(),
    );
    const result: DueDelivery[] = [];
    for (const notification of found) {
      notification.deliveries.forEach((delivery, index) => {
        if (delivery.state !== 'pending') return;
        if (delivery.inFlightUntil && delivery.inFlightUntil.getTime() > now.getTime()) return;
        if (delivery.nextAttemptAt && delivery.nextAttemptAt.getTime() > now.getTime()) return;
        result.push({ eventId: notification._id, index, delivery });
      });
    }
    return result;
  }

  /** A task's events with their deliveries, newest first (at most TASK_NOTIFICATIONS_LIMIT). */
  async forTask(taskId: string): Promise<NotificationSummary[]> {
    return this.notifications
      .find({ taskId }, { projection: { body: 0 }, sort: { createdAt: -1, _id: -1 }, limit: TASK_NOTIFICATIONS_LIMIT })
      .toArray();
  }
}

/** What `Notifier.emit` uses. */
export type NotificationsForEmitter = Pick<NotificationsRepository, 'insert'>;
/** What the notifications worker uses. */
export type NotificationsForWorker = Pick<
  NotificationsRepository,
  'findById' | 'claim' | 'recordAttempt' | 'addSent' | 'dueDeliveries'
>;
/** What GET /notifications uses. */
export type NotificationsForApi = Pick<NotificationsRepository, 'forTask'>;
