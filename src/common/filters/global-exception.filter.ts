import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';

/**
 * One place that turns errors into responses. OpenHIM answers errors with plain text, so an
 * HttpException whose response is a string is sent as `text/plain`; objects go out as JSON.
 * Anything else is a 500 carrying an error id that is logged with the stack (never sent).
 */
@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    if (response.headersSent) return;

    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      if (typeof body === 'string') {
        response.status(status).type('text/plain').send(body);
      } else {
        response.status(status).json(body);
      }
      return;
    }

    const parserStatus = bodyParserStatus(exception);
    if (parserStatus) {
      response.status(parserStatus.status).type('text/plain').send(parserStatus.message);
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
