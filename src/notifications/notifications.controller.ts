import { Controller, Get, HttpException, HttpStatus, Inject, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { Types } from 'mongoose';
import { Auth, CurrentUser } from '../auth/auth.decorators';
import type { AuthenticatedUser } from '../auth/authenticated-user';
import {
  NotificationsForApi,
  NotificationsRepository,
  NotificationSummary,
  TASK_NOTIFICATIONS_LIMIT,
} from '../database/repositories/notifications.repository';
import { TasksRepository } from '../database/repositories/tasks.repository';
import type { StoredDelivery } from '../database/schemas';
import { DeliveryView, NotificationEventView, NotificationView } from './notifications.dto';

const EXAMPLE_ID = '65f0c0ffee0000000000c001';
const HEX_ID = /^[0-9a-f]{24}$/i;
const ALLOWED_PARAMS = ['taskId'];

// Plain-text errors, as the rest of the API answers (the global filter sends a string body as text/plain).
const refuse = (status: HttpStatus, message: string) => new HttpException(message, status);
export const notificationsTaskNotFound = (id: string) => `We could not find a Task with this ID: ${id}.`;
export const notificationsForbidden = (email: string, id: string) =>
  `User ${email} may not read the notifications of task ${id}: only admins and the user who created it may.`;

const ApiText = (status: number, description: string, example: string) =>
  ApiResponse({ status, description, content: { 'text/plain': { schema: { type: 'string', example } } } });

/** A webhook URL as GET /notifications shows it: no credentials, no query string (they may hold secrets). */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}${parsed.search ? '?…' : ''}`;
  } catch {
    return '(not a URL)';
  }
}

function deliveryView(delivery: StoredDelivery): DeliveryView {
  const { inFlightUntil: _claim, ...shown } = delivery;
  return delivery.kind === 'webhook' ? { ...shown, url: shownUrl(delivery.url) } : (shown as DeliveryView);
}

function view(notification: NotificationSummary): NotificationView {
  const event = notification.event as unknown as NotificationEventView;
  return {
    id: notification._id,
    type: event.type,
    at: event.at,
    event,
    deliveries: notification.deliveries.map(deliveryView),
  };
}

/** GET /notifications?taskId=: what the service told people about a task, and whether they got it. */
@ApiTags('notifications')
@Controller('notifications')
export class NotificationsController {
  constructor(
    @Inject(TasksRepository) private readonly tasks: Pick<TasksRepository, 'findById'>,
    @Inject(NotificationsRepository) private readonly notifications: NotificationsForApi,
  ) {}

  @Get()
  @Auth()
  @ApiOperation({
    summary: "List a task's notifications and their deliveries",
    description:
      'The events about the task (task.created, task.started, task.completed...), newest first (at most ' +
      `${TASK_NOTIFICATIONS_LIMIT}), each with its webhook body and its deliveries: one per WEBHOOK_URLS entry ` +
      '(`pending` while being retried, `delivered`, or `given-up` after NOTIFY_RETRY_MS), and the e-mails to ' +
      'OpenHIM contact groups. Admins, and the user who created the task, may read them.',
  })
  @ApiQuery({ name: 'taskId', required: true, description: 'The task (24-character hex id)', example: EXAMPLE_ID })
  @ApiOkResponse({ type: [NotificationView], description: "The task's events, newest first" })
  @ApiText(
    400,
    'taskId missing or not a 24-character hex id, or another query parameter',
    'Invalid taskId "abc": expected a 24-character hex id',
  )
  @ApiText(
    403,
    'Neither an admin nor the user who created the task',
    notificationsForbidden('jane@example.org', EXAMPLE_ID),
  )
  @ApiText(404, 'No such task', notificationsTaskNotFound(EXAMPLE_ID))
  async list(
    @CurrentUser() user: AuthenticatedUser,
    @Query() query: Record<string, unknown>,
  ): Promise<NotificationView[]> {
    const unknown = Object.keys(query).find((name) => !ALLOWED_PARAMS.includes(name));
    if (unknown) {
      throw refuse(
        HttpStatus.BAD_REQUEST,
        `Unknown query parameter "${unknown}" (allowed: ${ALLOWED_PARAMS.join(', ')})`,
      );
    }
    const taskId = query.taskId;
    if (taskId === undefined || taskId === '') {
      throw refuse(HttpStatus.BAD_REQUEST, 'taskId is required: GET /notifications?taskId=<24-character hex id>');
    }
    if (typeof taskId !== 'string' || !HEX_ID.test(taskId)) {
      throw refuse(HttpStatus.BAD_REQUEST, `Invalid taskId ${JSON.stringify(taskId)}: expected a 24-character hex id`);
    }
    const id = taskId.toLowerCase();
    const task = await this.tasks.findById(new Types.ObjectId(id));
    if (!task) throw refuse(HttpStatus.NOT_FOUND, notificationsTaskNotFound(id));
    if (!user.isAdmin && task.user !== user.email) {
      throw refuse(HttpStatus.FORBIDDEN, notificationsForbidden(user.email, id));
    }
    return (await this.notifications.forTask(id)).map(view);
  }
}
