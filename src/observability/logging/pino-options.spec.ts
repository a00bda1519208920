import type { IncomingMessage, ServerResponse } from 'node:http';
import { pinoHttpOptions, pinoLevel, requestId, requestLogLevel } from './pino-options';

function fakeRes(statusCode = 200) {
  const headers: Record<string, string> = {};
  return {
    statusCode,
    headers,
    setHeader: (name: string, value: string) => (headers[name] = value),
  } as unknown as ServerResponse & {
    headers: Record<string, string>;
  };
}
const fakeReq = (url: string, headers: Record<string, string> = {}) => ({ url, headers }) as unknown as IncomingMessage;

describe('request ids', () => {
  it('keeps a printable incoming x-request-id and echoes it', () => {
    const res = fakeRes();
    expect(requestId(fakeReq('/tasks', { 'x-request-id': 'gw-7f3a:01' }), res)).toBe('gw-7f3a:01');
    expect(res.headers['x-request-id']).toBe('gw-7f3a:01');
  });

  it.each([['has a\nnewline'], ['x'.repeat(129)], ['']])('replaces an unusable one (%j) with a UUID', (incoming) => {
    const res = fakeRes();
    const id = requestId(fakeReq('/tasks', { 'x-request-id': incoming }), res);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-request-id']).toBe(id);
  });
});

describe('request log levels', () => {
  it('puts failures above successes and health/metrics scrapes at debug', () => {
    expect(requestLogLevel(fakeReq('/tasks'), fakeRes(200))).toBe('info');
    expect(requestLogLevel(fakeReq('/tasks'), fakeRes(401))).toBe('warn');
    expect(requestLogLevel(fakeReq('/tasks'), fakeRes(503))).toBe('error');
    expect(requestLogLevel(fakeReq('/health'), fakeRes(200))).toBe('debug');
    expect(requestLogLevel(fakeReq('/health/live'), fakeRes(200))).toBe('debug');
    expect(requestLogLevel(fakeReq('/metrics'), fakeRes(200))).toBe('debug');
    expect(requestLogLevel(fakeReq('/healthy'), fakeRes(200))).toBe('info');
    expect(requestLogLevel(fakeReq('/health'), fakeRes(503))).toBe('error');
  });
});

describe('pino settings', () => {
  it('maps LOG_LEVEL to pino levels', () => {
    expect(pinoLevel('verbose')).toBe('trace');
    expect(pinoLevel('info')).toBe('info');
    expect(pinoLevel('fatal')).toBe('fatal');
  });

  it('writes JSON unless asked for pretty output or on a terminal', () => {
    const [options] = pinoHttpOptions({ level: 'info', format: 'json', role: 'api' });
    expect(options.formatters?.level).toBeDefined();
    const [prettyOptions, stream] = pinoHttpOptions({ level: 'info', format: 'pretty', role: 'api' });
    expect(prettyOptions.formatters).toBeUndefined();
    expect(stream).toBeDefined();
  });
});
