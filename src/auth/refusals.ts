import { HttpException, HttpStatus } from '@nestjs/common';
import type { Request, Response } from 'express';

/** The bodies of the API's authentication refusals, as OpenHIM core answers them. */
export const UNAUTHORIZED_BODY = 'Unauthorized';
export const TOO_MANY_REQUESTS_BODY = 'Too Many Requests';

/** The client's IP, as the failed-attempt limit counts it. */
export function clientIp(request: Pick<Request, 'ip' | 'socket'>): string {
  return request.ip ?? request.socket?.remoteAddress ?? 'unknown';
}

/** A 429 with its Retry-After header. */
export function tooManyRequests(response: Response, retryAfterSeconds: number): HttpException {
  response.setHeader('Retry-After', String(retryAfterSeconds));
  return new HttpException(TOO_MANY_REQUESTS_BODY, HttpStatus.TOO_MANY_REQUESTS);
}
