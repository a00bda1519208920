import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';

export const RERUN_GUARDS_COLLECTION = 'rerunguards';

/** The probe a worker is sending while a channel waits for its downstream (one per channel). */
export interface ChannelProbe {
  /** Which worker (host:pid:random) holds the probe, until when (renewed while it runs). */
  owner: string;
  until: Date;
  taskId?: Types.ObjectId;
  seq?: number;
  tid?: string;
}

/**
 * A channel's circuit breaker (docs/design.md, "Outage recovery"). `failures`: reruns to the channel
 * that ended failed in a row, across every task. `open` from the moment they reached
 * BREAKER_FAILURES until a probe succeeds. The probe schedule (`nextProbeAt`, `backoffMs`, `probe`)
 * also serves tasks that auto-pause paused with `autoResume` while the breaker is closed.
 */
export interface ChannelBreaker {
  state: 'closed' | 'open';
  failures: number;
  lastError?: string;
  openedAt?: Date;
  /** The back-off before the next probe (doubles after each failed probe). */
  backoffMs?: number;
  nextProbeAt?: Date;
  probe?: ChannelProbe;
  /** Probes sent since the breaker opened (or since tasks began waiting). */
  probes?: number;
}

/**
 * A channel's downstream guard (ours, collection `rerunguards`, one document per channel that has
 * limits of its own or a breaker that ever counted a failure): `maxInFlight` and `maxPerSecond` bound
 * the reruns to the channel across every task and worker (absent: GUARD_MAX_IN_FLIGHT /
 * GUARD_MAX_PER_SECOND; 0: no limit).
 */
@Schema({ collection: RERUN_GUARDS_COLLECTION, versionKey: false })
export class RerunGuard {
  @Prop({ type: Types.ObjectId, required: true, unique: true }) channelID: Types.ObjectId;
  @Prop() maxInFlight?: number;
  @Prop() maxPerSecond?: number;
  /** Who set the limits last (the API user's email), when. */
  @Prop() updatedBy?: string;
  @Prop() updatedAt?: Date;
  @Prop({ type: Object }) breaker?: ChannelBreaker;
}
/** A guard as stored. */
export type StoredRerunGuard = RerunGuard & { _id: Types.ObjectId };
export type RerunGuardDocument = HydratedDocument<RerunGuard>;
export const RerunGuardSchema = SchemaFactory.createForClass(RerunGuard);
