import { Injectable } from '@nestjs/common';
import type { AuthenticatedUser } from './authenticated-user';

export const INSUFFICIENT_RERUN_PERMISSIONS = 'Insufficient permissions prevents this rerun task from being created';

/** The part of a channel that decides who may rerun its transactions. */
export interface RerunAclChannel {
  txRerunAcl?: string[] | null;
}

/**
 * OpenHIM's rule for creating a rerun task: the admin group may rerun anything; anyone else only
 * when every channel of the task's transactions lists one of their groups in `txRerunAcl`.
 * Pass one entry per distinct channel of the selected transactions; a channel id whose channel
 * document no longer exists should be passed as `{}` (OpenHIM denies it). Transactions that do not
 * exist contribute no channel (OpenHIM accepts them, and they fail later).
 */
@Injectable()
export class RerunPermissions {
  canRerunChannels(user: AuthenticatedUser, channels: readonly RerunAclChannel[]): boolean {
    if (user.isAdmin) return true;
    const groups = new Set(user.groups);
    return channels.every((channel) => (channel.txRerunAcl ?? []).some((group) => groups.has(group)));
  }
}
