import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { isDatabaseUnavailable } from '../database-availability';

/**
 * One place that turns errors into responses. OpenHIM answers errors with plain text, so an
 * HttpException whose response is a string is sent as `text/plain`, and so is one in Nest's default
 * shape `{statusCode, message, error}` (what `new BadRequestException('text')`, unknown routes and
 * malformed JSON bodies give); other objects go out as JSON. Anything else is a 500 carrying an
 * error id that is logged with the stack (never sent).
 */
@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const response = http.getResponse<Response>();
    if (response.headersSent) return;

    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      const text = typeof body === 'string' ? body : defaultShapeMessage(body);
      if (text === undefined) {
        response.status(status).json(body);
      } else if (status === HttpStatus.BAD_REQUEST && isUnparsedJsonBody(http.getRequest<Request>())) {
        // Nest turns body-parser's SyntaxError into a bare BadRequestException: say what it was.
        response.status(status).type('text/plain').send(`Malformed JSON body: ${text}`);
      } else {
        response.status(status).type('text/plain').send(text);
      }
      return;
    }

    const parserStatus = bodyParserStatus(exception);
    if (parserStatus) {
      response.status(parserStatus.status).type('text/plain').send(parserStatus.message);
      return;
    }

    if (isDatabaseUnavailable(exception)) {
      this.logger.warn(`MongoDB unavailable: ${(exception as Error).message}`);
      response
        .status(HttpStatus.SERVICE_UNAVAILABLE)
        .setHeader('Retry-After', '5')
        .type('text/plain')
        .send(DATABASE_UNAVAILABLE);
      return;
    }

    const errorId = randomUUID();
    const error = exception instanceof Error ? exception : new Error(String(exception));
    this.logger.error(`Unhandled error ${errorId}: ${error.message}`, error.stack);
    response
      .status(HttpStatus.INTERNAL_SERVER_ERROR)
      .type('text/plain')
      .send(`Internal server error (error id ${errorId})`);
  }
}

export const DATABASE_UNAVAILABLE = 'The database (MongoDB) is unavailable. Try again shortly.';

/** The message of Nest's default error body `{statusCode, message, error}`, when that is what it is. */
function defaultShapeMessage(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const record = body as Record<string, unknown>;
  const onlyDefaultKeys = Object.keys(record).every((key) => ['statusCode', 'message', 'error'].includes(key));
  return onlyDefaultKeys && typeof record.message === 'string' ? record.message : undefined;
}

/** A JSON body that body-parser could not parse leaves `req.body` unset. */
function isUnparsedJsonBody(request: Request | undefined): boolean {
  return Boolean(
    request && typeof request.is === 'function' && request.is('application/json') && request.body === undefined,
  );
}

/** body-parser errors (malformed JSON, too large, bad charset) carry their own 4xx status. */
function bodyParserStatus(exception: unknown): { status: number; message: string } | undefined {
  const candidate = exception as { status?: number; statusCode?: number; type?: string; message?: string };
  const status = candidate?.status ?? candidate?.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  switch (candidate.type) {
    case 'entity.parse.failed':
      return { status: 400, message: `Malformed JSON body: ${candidate.message}` };
    case 'entity.too.large':
      return { status: 413, message: 'Request body too large' };
    default:
      return { status, message: candidate.message ?? 'Bad request' };
  }
}
