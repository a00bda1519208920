import {
  ArgumentsHost,
  BadRequestException,
  HttpException,
  Logger,
  NotFoundException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { DATABASE_UNAVAILABLE, GlobalExceptionFilter } from './global-exception.filter';

/** A minimal express response/request pair that records what was sent. */
function capture(request: Record<string, unknown> = {}) {
  const sent: { status?: number; type?: string; body?: unknown; json?: unknown } = {};
  const headers: Record<string, string> = {};
  const response = {
    headersSent: false,
    setHeader(name: string, value: string) {
      headers[name] = value;
      return this;
    },
    status(code: number) {
      sent.status = code;
      return this;
    },
    type(value: string) {
      sent.type = value;
      return this;
    },
    send(body: unknown) {
      sent.body = body;
      return this;
    },
    json(body: unknown) {
      sent.json = body;
      return this;
    },
  };
  const host = {
    switchToHttp: () => ({
      getResponse: () => response,
      getRequest: () => ({ is: () => false, body: {}, ...request }),
    }),
  } as unknown as ArgumentsHost;
  return { host, sent, headers };
}

describe('GlobalExceptionFilter', () => {
  const filter = new GlobalExceptionFilter();

  it('sends string HttpException bodies, and Nest default-shaped ones, as text/plain', () => {
    const text = capture();
    filter.catch(new HttpException('Invalid batch size specified', 400), text.host);
    expect(text.sent).toEqual({ status: 400, type: 'text/plain', body: 'Invalid batch size specified' });

    const shaped = capture();
    filter.catch(new NotFoundException('Cannot GET /nope'), shaped.host);
    expect(shaped.sent).toEqual({ status: 404, type: 'text/plain', body: 'Cannot GET /nope' });
  });

  it('keeps other objects as JSON', () => {
    const { host, sent } = capture();
    filter.catch(new ServiceUnavailableException({ status: 'down', redis: 'timeout' }), host);
    expect(sent).toEqual({ status: 503, json: { status: 'down', redis: 'timeout' } });
  });

  it('names a malformed JSON body', () => {
    const { host, sent } = capture({
      is: (type: string) => (type === 'application/json' ? 'application/json' : false),
      body: undefined,
    });
    filter.catch(new BadRequestException('Unexpected end of JSON input'), host);
    expect(sent).toEqual({
      status: 400,
      type: 'text/plain',
      body: 'Malformed JSON body: Unexpected end of JSON input',
    });
  });

  it('maps body-parser errors to their 4xx', () => {
    const { host, sent } = capture();
    filter.catch(Object.assign(new Error('request entity too large'), { status: 413, type: 'entity.too.large' }), host);
    expect(sent).toEqual({ status: 413, type: 'text/plain', body: 'Request body too large' });
  });

  it('answers 503 with Retry-After, not 500, when MongoDB cannot be reached', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      for (const name of ['MongoServerSelectionError', 'MongoNetworkError', 'MongoPoolClearedError']) {
        const { host, sent, headers } = capture();
        filter.catch(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:27017'), { name }), host);
        expect(sent).toEqual({ status: 503, type: 'text/plain', body: DATABASE_UNAVAILABLE });
        expect(headers).toEqual({ 'Retry-After': '5' });
      }
      const buffered = Object.assign(new Error('Operation `tasks.findOne()` buffering timed out after 10000ms'), {
        name: 'MongooseError',
      });
      const { host, sent } = capture();
      filter.catch(buffered, host);
      expect(sent.status).toBe(503);
      // Any other driver error (a bad query, a duplicate key) is not an outage.
      const other = capture();
      jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      filter.catch(Object.assign(new Error('E11000 duplicate key'), { name: 'MongoServerError' }), other.host);
      expect(other.sent.status).toBe(500);
    } finally {
      jest.restoreAllMocks();
      warn.mockRestore();
    }
  });

  it('answers 503 with Retry-After while a replica set has no writable primary (step-down, election)', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const steppingDown: Array<[string, Record<string, unknown>]> = [
        ['not master', { code: 10107 }],
        ['not primary and secondaryOk=false', { code: 13435 }],
        ['operation was interrupted', { code: 11602 }],
        ['PrimarySteppedDown', { code: 189 }],
        ['interrupted at shutdown', { code: 91 }],
        ['retryable write failed twice', { code: 6, errorLabels: ['RetryableWriteError'] }],
      ];
      for (const [message, fields] of steppingDown) {
        const { host, sent, headers } = capture();
        filter.catch(Object.assign(new Error(message), { name: 'MongoServerError', ...fields }), host);
        expect(sent).toEqual({ status: 503, type: 'text/plain', body: DATABASE_UNAVAILABLE });
        expect(headers).toEqual({ 'Retry-After': '5' });
      }
    } finally {
      warn.mockRestore();
    }
  });

  it('answers anything else with a 500 carrying a logged error id, never the stack or message', () => {
    const logged: string[] = [];
    const spy = jest.spyOn(Logger.prototype, 'error').mockImplementation((message: unknown, stack?: unknown) => {
      logged.push(`${String(message)}\n${String(stack)}`);
    });
    try {
      const { host, sent } = capture();
      filter.catch(new Error('connection string mongodb://user:secret@db'), host);
      expect(sent.status).toBe(500);
      expect(sent.type).toBe('text/plain');
      const id = /^Internal server error \(error id ([0-9a-f-]{36})\)$/.exec(String(sent.body))?.[1];
      expect(id).toBeDefined();
      expect(String(sent.body)).not.toContain('secret');
      expect(String(sent.body)).not.toContain('at ');
      expect(logged.join('\n')).toContain(id!);
      expect(logged.join('\n')).toContain('global-exception.filter.spec.ts');
    } finally {
      spy.mockRestore();
    }
  });
});
