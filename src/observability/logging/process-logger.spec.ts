import { Logger } from '@nestjs/common';
import { processLogger } from '../../common/logging/log-context';
import { quietNestStartupErrors, useProcessLogger } from './process-logger';

describe('the process logger (every line, from the first, through one pino logger)', () => {
  const lines: Array<Record<string, unknown>> = [];
  const destination = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
  const last = () => lines[lines.length - 1];

  beforeAll(() => useProcessLogger({ level: 'info', format: 'json', role: 'all' }, destination));
  beforeEach(() => (lines.length = 0));

  it("writes Nest's Logger as JSON lines with the level name, role and context", () => {
    new Logger('Bootstrap').warn('embedded database');
    expect(last()).toMatchObject({ level: 'warn', role: 'all', context: 'Bootstrap', msg: 'embedded database' });
    expect(processLogger()).toBeDefined();
  });

  it('keeps the stack of an error logged the way Nest exception handlers do', () => {
    const error = new Error('boom');
    new Logger('ExceptionsHandler').error(error.message, error.stack);
    expect(last()).toMatchObject({ level: 'error', msg: 'boom', err: { message: 'boom' } });
    expect((last().err as { stack: string }).stack).toMatch(/\n\s+at /);
  });

  it("while starting: Nest's own copy of a failed start goes to debug, MongoDB retries are warnings with their cause", () => {
    const unquiet = quietNestStartupErrors();
    try {
      new Logger('NestApplication').error('Error: listen EADDRINUSE: address already in use 0.0.0.0:8080');
      expect(lines).toEqual([]);
      const failure = new Error('connect ECONNREFUSED 127.0.0.1:1');
      failure.name = 'MongooseServerSelectionError';
      new Logger('MongooseModule').error('Unable to connect to the database. Retrying (1)...', failure.stack);
      expect(last()).toEqual(
        expect.objectContaining({
          level: 'warn',
          context: 'MongooseModule',
          msg: 'Unable to connect to the database. Retrying (1)... (MongooseServerSelectionError: connect ECONNREFUSED 127.0.0.1:1)',
        }),
      );
      expect(last()).not.toHaveProperty('err');
    } finally {
      unquiet();
    }
    new Logger('NestApplication').error('after start-up, errors are errors');
    expect(last()).toMatchObject({ level: 'error', msg: 'after start-up, errors are errors' });
  });
});
