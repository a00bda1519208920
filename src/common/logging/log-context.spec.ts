import { INestApplicationContext, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig } from '../../config/app-config';
import { withLogContext } from './log-context';
import { LoggingModule } from '../../observability/logging/logging.module';

describe('withLogContext (engine log lines carry the task id)', () => {
  const lines: Array<Record<string, unknown>> = [];
  const destination = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };

  let app: INestApplicationContext;

  beforeAll(async () => {
    const config = loadConfig({ LOG_LEVEL: 'debug', LOG_FORMAT: 'json' });
    @Module({ imports: [LoggingModule.forRoot(config, 'worker', destination)] })
    class TestModule {}
    // LoggingModule makes every Nest Logger write through the process logger.
    app = await NestFactory.createApplicationContext(TestModule);
    lines.length = 0;
  });
  afterAll(() => app.close());

  const find = (msg: string) => lines.find((line) => line.msg === msg);

  it('binds the task id to every line logged inside, through any Nest Logger and across awaits', async () => {
    await withLogContext({ taskId: 'task-1' }, async () => {
      new Logger('LaneRunner').log('lane started');
      await new Promise((resolve) => setTimeout(resolve, 5));
      new Logger('ItemRunner').warn('item answered 500');
    });
    new Logger('Sweeper').log('outside any task');

    expect(find('lane started')).toMatchObject({
      taskId: 'task-1',
      context: 'LaneRunner',
      level: 'info',
      role: 'worker',
    });
    expect(find('item answered 500')).toMatchObject({ taskId: 'task-1', context: 'ItemRunner', level: 'warn' });
    expect(find('outside any task')).not.toHaveProperty('taskId');
  });

  it('keeps concurrent tasks apart and lets nested contexts add fields', async () => {
    await Promise.all([
      withLogContext({ taskId: 'a' }, async () => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        new Logger('LaneRunner').log('from a');
      }),
      withLogContext({ taskId: 'b' }, () =>
        withLogContext({ lane: 2 }, async () => {
          new Logger('LaneRunner').log('from b');
        }),
      ),
    ]);
    expect(find('from a')).toMatchObject({ taskId: 'a' });
    expect(find('from b')).toMatchObject({ taskId: 'b', lane: 2 });
  });

  it('never writes a password field, at the top level or one level down', () => {
    new Logger('Auth').log({ msg: 'user record', password: 'hunter2', user: { email: 'a@b', password: 'hunter3' } });
    const line = find('user record')!;
    expect(JSON.stringify(line)).not.toMatch(/hunter/);
    expect(line).toMatchObject({ password: '[Redacted]', user: { email: 'a@b', password: '[Redacted]' } });
  });

  it('maps LOG_LEVEL verbose to pino trace and filters below the level', () => {
    new Logger('X').verbose('very detailed');
    expect(find('very detailed')).toBeUndefined();
    new Logger('X').debug('detailed');
    expect(find('detailed')).toMatchObject({ level: 'debug' });
  });
});
