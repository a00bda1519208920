import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { unsupportedMediaType } from '../errors';

export const JSON_REQUIRED = 'Content-Type must be application/json';

/** POST/PUT bodies are JSON: anything else is a 415 (after authentication, so no hint to strangers). */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request>();
    // `is()` answers null for an empty body: then the header alone decides.
    const header = request.headers['content-type'] ?? '';
    const json = request.is('application/json') || /^application\/json\s*(;|$)/i.test(header);
    if (!json) throw unsupportedMediaType(JSON_REQUIRED);
    return true;
  }
}
