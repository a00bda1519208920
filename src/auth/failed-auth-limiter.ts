import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { normalizeIp, ThrottlerStorageService } from '@nestjs/throttler';
import { AppConfig } from '../config/app-config';

/** Failed authentications are counted per client IP over this window; a blocked IP waits as long. */
export const FAILED_AUTH_WINDOW_MS = 60_000;
const THROTTLER_NAME = 'failed-authentication';

/**
 * After `AUTH_FAILURE_LIMIT` failed authentications from one IP (IPv6: one /64) within a minute,
 * every request from it is answered 429, whatever its credentials, until the block ends; otherwise a
 * correct guess would still get through. Successful requests are not counted. Counts are kept in
 * this process (per API replica), with @nestjs/throttler's storage.
 */
@Injectable()
export class FailedAuthLimiter implements OnApplicationShutdown {
  private readonly storage = new ThrottlerStorageService();
  private readonly limit: number;

  constructor(config: AppConfig) {
    this.limit = config.AUTH_FAILURE_LIMIT;
  }

  get enabled(): boolean {
    return this.limit > 0;
  }

  /** Seconds until `ip` may try again, or 0 when it is not blocked. */
  blockedFor(ip: string, now = Date.now()): number {
    if (!this.enabled) return 0;
    const record = this.storage.storage.get(key(ip));
    if (!record?.isBlocked || record.blockExpiresAt <= now) return 0;
    return Math.ceil((record.blockExpiresAt - now) / 1000);
  }

  /** Counts a failure; returns the seconds `ip` is now blocked for (0 when still under the limit). */
  async recordFailure(ip: string): Promise<number> {
    if (!this.enabled) return 0;
    const result = await this.storage.increment(
      key(ip),
      FAILED_AUTH_WINDOW_MS,
      this.limit,
      FAILED_AUTH_WINDOW_MS,
      THROTTLER_NAME,
    );
    return result.isBlocked ? Math.max(1, result.timeToBlockExpire) : 0;
  }

  onApplicationShutdown(): void {
    this.storage.onApplicationShutdown();
  }
}

function key(ip: string): string {
  return `${THROTTLER_NAME}:${normalizeIp(ip)}`;
}
