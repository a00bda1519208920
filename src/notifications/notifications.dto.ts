import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DELIVERY_STATES } from '../database/schemas';
import { NOTIFICATION_TYPES } from './notification-event';

const EXAMPLE_TASK = '65f0c0ffee0000000000c001';
const EXAMPLE_EVENT = '0b6f3b4e-2c1f-4a57-9a43-7e1d0f3c2b9a';

/** The task an event is about, as it was then (webhook body `task`). */
export class NotifiedTaskView {
  @ApiProperty({ description: 'Hex id', example: EXAMPLE_TASK }) id: string;
  @ApiPropertyOptional({ example: 'Completed' }) status?: string;
  @ApiPropertyOptional({ description: 'Who created it (email)', example: 'jane@example.org' }) user?: string;
  @ApiPropertyOptional({ example: 200000 }) totalTransactions?: number;
  @ApiPropertyOptional({ example: 0 }) remainingTransactions?: number;
  @ApiPropertyOptional({ description: 'Items that ended failed (task.completed)', example: 12 }) failed?: number;
}

/** The channel an event is about (breaker events, a stop of one channel). */
export class NotifiedChannelView {
  @ApiProperty({ description: 'Hex id', example: '00000000000000000000c001' }) id: string;
  @ApiPropertyOptional({ example: 'FHIR Patients' }) name?: string;
  @ApiPropertyOptional({ description: 'Failed reruns in a row (breaker.opened)', example: 20 }) failures?: number;
  @ApiPropertyOptional({ example: 'connect ECONNREFUSED 10.0.0.5:3447' }) lastError?: string;
}

/**
 * The event: exactly the JSON body every webhook receives (a stable schema: fields are only ever
 * added; a receiver should ignore fields it does not know).
 */
export class NotificationEventView {
  @ApiProperty({
    description: 'Unique per event, the same on every attempt (de-duplicate by it)',
    example: EXAMPLE_EVENT,
  })
  id: string;
  @ApiProperty({ enum: NOTIFICATION_TYPES, example: 'task.completed' }) type: string;
  @ApiProperty({ description: 'When it happened (ISO 8601)', example: '2026-12-08T02:15:00.000Z' }) at: string;
  @ApiPropertyOptional({ type: NotifiedTaskView }) task?: NotifiedTaskView;
  @ApiPropertyOptional({ type: NotifiedChannelView }) channel?: NotifiedChannelView;
  @ApiPropertyOptional({ description: "Why (an auto-pause's reason, an emergency stop's reason...)" }) reason?: string;
  @ApiPropertyOptional({ description: 'Who did it (the API user), for what a person did', example: 'jane@example.org' })
  user?: string;
  @ApiPropertyOptional({ description: 'Tasks an emergency stop or resume changed (hex ids)', type: [String] })
  tasks?: string[];
}

export class SkippedRecipientView {
  @ApiProperty({ example: '+27831234567' }) user: string;
  @ApiProperty({ example: 'SMS is not supported' }) reason: string;
}

/** One delivery of an event and where it stands. */
export class DeliveryView {
  @ApiProperty({ enum: ['webhook', 'email'], example: 'webhook' }) kind: 'webhook' | 'email';
  @ApiPropertyOptional({
    description: 'webhook: the receiver (one of WEBHOOK_URLS), without credentials or query string',
    example: 'https://hooks.example.org/openhim',
  })
  url?: string;
  @ApiPropertyOptional({ description: 'email: the OpenHIM contact groups', type: [String], example: ['ops'] })
  groups?: string[];
  @ApiProperty({
    enum: DELIVERY_STATES,
    description:
      '`pending` (not yet delivered: retried with back-off), `delivered`, or `given-up` after NOTIFY_RETRY_MS',
    example: 'delivered',
  })
  state: string;
  @ApiProperty({ description: 'Attempts started', example: 1 }) attempts: number;
  @ApiPropertyOptional({ description: 'Why the last attempt failed', example: 'answered 503 Service Unavailable' })
  lastError?: string;
  @ApiPropertyOptional({ type: String, format: 'date-time' }) lastAttemptAt?: Date;
  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'pending: when the next attempt is due' })
  nextAttemptAt?: Date;
  @ApiPropertyOptional({ type: String, format: 'date-time' }) deliveredAt?: Date;
  @ApiPropertyOptional({ type: String, format: 'date-time' }) givenUpAt?: Date;
  @ApiPropertyOptional({ description: 'email: addresses the SMTP server accepted', type: [String] }) sent?: string[];
  @ApiPropertyOptional({ description: 'email: members not mailed, and why', type: [SkippedRecipientView] })
  skipped?: SkippedRecipientView[];
}

/** One event of a task, with its deliveries. */
export class NotificationView {
  @ApiProperty({ example: EXAMPLE_EVENT }) id: string;
  @ApiProperty({ enum: NOTIFICATION_TYPES, example: 'task.completed' }) type: string;
  @ApiProperty({ example: '2026-12-08T02:15:00.000Z' }) at: string;
  @ApiProperty({ type: NotificationEventView, description: 'The webhook body' }) event: NotificationEventView;
  @ApiProperty({ type: [DeliveryView] }) deliveries: DeliveryView[];
}
