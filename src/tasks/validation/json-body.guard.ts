import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { unsupportedMediaType } from '../errors';

export const JSON_REQUIRED = 'Content-Type must be application/json';

/** POST/PUT bodies are JSON: anything else is a 415 (after authentication, so no hint to strangers). */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    requireJson(context.switchToHttp().getRequest<Request>());
    return true;
  }
}

/** For an optional body: a request without one passes; a body must be JSON. */
@Injectable()
export class OptionalJsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request>();
    const length = request.headers['content-length'];
    const hasBody = request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
    if (hasBody) requireJson(request);
    return true;
  }
}

function requireJson(request: Request): void {
  // `is()` answers null for an empty body: then the header alone decides.
  const header = request.headers['content-type'] ?? '';
  const json = request.is('application/json') || /^application\/json\s*(;|$)/i.test(header);
  if (!json) throw unsupportedMediaType(JSON_REQUIRED);
}
