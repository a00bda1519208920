import { Injectable, Logger } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { AlertLog, StoredAlertLog } from '../schemas';
import { CollectionRepository } from './collection-repository';

const DUPLICATE_KEY = 11000;
/**
 * Inserts that lost to another worker's before a claim gives up (the delivery is retried later). A
 * limited member's claim ends at its second read; a member without a limit mailed by many
 * deliveries at once takes one number per round, each after a short random wait.
 */
const CLAIM_ATTEMPTS = 50;
const CLAIM_JITTER_MS = 20;

/** What a send to one address is about, and the address's limit. */
export interface AlertRequest {
  eventId: string;
  type: string;
  /** The member's `maxAlerts`, as recorded. */
  maxAlerts: string;
  /** No other send within this long before (0: no limit). */
  windowMs: number;
}

/**
 * Whether to send: `send` (claimed: confirm with `sent`, or `release` when the SMTP server did not
 * take it), `sent` (an earlier attempt of this event sent it: do not send again), `limited` (an
 * e-mail went to the address within its window, at `lastAt`).
 */
export type AlertClaim =
  { outcome: 'send'; id: Types.ObjectId } | { outcome: 'sent' } | { outcome: 'limited'; lastAt: Date };

/**
 * Our `rerunalerts`: one entry per e-mail to a contact-group member, for `maxAlerts`. A send is
 * claimed before it is made, atomically across workers: the entries of an address carry consecutive
 * numbers under a unique index `{user, seq}`, and a claim reads the last entry, refuses when it lies
 * within the window, else inserts the next number. Two workers that read the same last entry insert
 * the same number: one gets a duplicate key, reads again, finds the other's entry and refuses. So
 * of any number of concurrent deliveries, one e-mail per window reaches a limited member.
 */
@Injectable()
export class AlertLogRepository extends CollectionRepository<AlertLog> {
  private readonly logger = new Logger(AlertLogRepository.name);
  private indexes?: Promise<void>;

  constructor(@InjectModel(AlertLog.name) model: Model<AlertLog>, config: AppConfig) {
    super(model, config);
  }

  /**
   * Claims a send of event `request.eventId` to `user` (an address, any case). An entry this event
   * already has is reused: `sent` when the SMTP server took it (a retry whose delivery did not
   * record the address), else claimed again (an attempt that stopped before the send was known).
   */
  async claim(user: string, request: AlertRequest): Promise<AlertClaim> {
    await this.ensureIndexes();
    const address = user.toLowerCase();
    const own = (await this.op('claim', (o) =>
      this.collection.findOne({ eventId: request.eventId, user: address }, o),
    )) as StoredAlertLog | null;
    if (own) return own.state === 'sent' ? { outcome: 'sent' } : { outcome: 'send', id: own._id };
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const last = (await this.op('claim', (o) =>
        this.collection.findOne({ user: address }, { sort: { seq: -1 }, ...o }),
      )) as StoredAlertLog | null;
      const now = new Date();
      if (last && request.windowMs > 0 && last.at.getTime() > now.getTime() - request.windowMs) {
        return { outcome: 'limited', lastAt: last.at };
      }
      const entry = {
        _id: new Types.ObjectId(),
        user: address,
        seq: (last?.seq ?? 0) + 1,
        at: now,
        state: 'sending',
        eventId: request.eventId,
        type: request.type,
        maxAlerts: request.maxAlerts,
      };
      try {
        await this.op('claim', (o) => this.collection.insertOne(entry, o));
        return { outcome: 'send', id: entry._id };
      } catch (error) {
        if ((error as { code?: number }).code !== DUPLICATE_KEY) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * CLAIM_JITTER_MS));
    }
    throw new Error(`Could not record an e-mail to ${address}: ${CLAIM_ATTEMPTS} other sends to it at the same time`);
  }

  /** The SMTP server accepted the message of a claim. */
  async sent(id: Types.ObjectId): Promise<void> {
    await this.op('sent', (o) =>
      this.collection.updateOne({ _id: id }, { $set: { state: 'sent', sentAt: new Date() } }, o),
    );
  }

  /** The message of a claim was not sent: the address may be mailed again within its window. */
  async release(id: Types.ObjectId): Promise<void> {
    await this.op('release', (o) => this.collection.deleteOne({ _id: id, state: 'sending' }, o));
  }

  /** The entries of an address, newest first (tests, operators). */
  async of(user: string): Promise<StoredAlertLog[]> {
    return (await this.collection.find({ user: user.toLowerCase() }).sort({ seq: -1 }).toArray()) as StoredAlertLog[];
  }

  /**
   * The unique index must exist before the first claim (mongoose builds the schema's indexes in the
   * background at start). Without it (no right to create indexes) a claim still refuses within the
   * window, only two concurrent first sends could both go: said once in the log.
   */
  private ensureIndexes(): Promise<void> {
    return (this.indexes ??= this.model.init().then(
      () => undefined,
      (error: Error) => {
        this.logger.warn(`Could not create the indexes of ${this.model.collection.name}: ${error.message}`);
      },
    ));
  }
}

/** What the e-mail notifications use. */
export type AlertLogForEmail = Pick<AlertLogRepository, 'claim' | 'sent' | 'release'>;
