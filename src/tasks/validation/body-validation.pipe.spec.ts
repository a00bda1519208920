import { HttpException } from '@nestjs/common';
import { loadConfig } from '../../config/app-config';
import { BulkRerunDto } from '../dto/bulk-rerun.dto';
import { CreateTaskDto } from '../dto/create-task.dto';
import { UpdateTaskDto } from '../dto/update-task.dto';
import { BodyValidationPipe } from './body-validation.pipe';

const ID = '5bb777777bbb66cc5d4444ee';
const pipe = new BodyValidationPipe(loadConfig({ MAX_TASK_TIDS: '5', MAX_BATCH_SIZE: '10' }));
const run = (metatype: new () => object, value: unknown) => pipe.transform(value, { type: 'body', metatype });
const problem = async (metatype: new () => object, value: unknown): Promise<string> => {
  const error = await run(metatype, value).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(HttpException);
  return (error as HttpException).getResponse() as string;
};

describe('BodyValidationPipe', () => {
  it('accepts the seed sample', async () => {
    const dto = await run(CreateTaskDto, { tids: [ID, ID.toUpperCase()], batchSize: 2, paused: true });
    expect(dto).toBeInstanceOf(CreateTaskDto);
    expect(dto).toMatchObject({ batchSize: 2, paused: true });
    expect(await run(CreateTaskDto, { tids: [ID], batchSize: '3' })).toMatchObject({ batchSize: 3 });
  });

  it("keeps OpenHIM's text for batchSize <= 0", async () => {
    expect(await problem(CreateTaskDto, { tids: [ID], batchSize: 0 })).toBe('Invalid batch size specified');
    expect(await problem(CreateTaskDto, { tids: [ID], batchSize: -3 })).toBe('Invalid batch size specified');
    expect(await problem(CreateTaskDto, { tids: [ID], batchSize: 'x' })).toBe(
      'batchSize must be a positive integer (got "x")',
    );
    expect(await problem(CreateTaskDto, { tids: [ID], batchSize: 1.5 })).toBe(
      'batchSize must be a positive integer (got 1.5)',
    );
    expect(await problem(CreateTaskDto, { tids: [ID], batchSize: 11 })).toBe('batchSize must be at most 10 (got 11)');
  });

  it('names the offending tids: the first few and the count', async () => {
    const tids = [ID, 'abc', 12, null, ID, 'x', 'y', 'z', 'w'];
    expect(await problem(CreateTaskDto, { tids })).toBe(
      'tids must contain only 24-character hex transaction ids: 7 invalid entries ' +
        '(tids[1] = "abc", tids[2] = 12, tids[3] = null, tids[5] = "x", tids[6] = "y", and 2 more)',
    );
    expect(await problem(CreateTaskDto, { tids: [] })).toBe('tids must contain at least one transaction id');
    expect(await problem(CreateTaskDto, {})).toBe('tids must be an array of transaction ids (got undefined)');
    expect(await problem(CreateTaskDto, { tids: ID })).toBe(`tids must be an array of transaction ids (got "${ID}")`);
    expect(await problem(CreateTaskDto, { tids: Array(6).fill(ID) })).toBe(
      'tids may contain at most 5 transaction ids (got 6)',
    );
  });

  it('refuses unknown fields, non-objects and bad types, naming each', async () => {
    expect(await problem(CreateTaskDto, { tids: [ID], foo: 1 })).toBe(
      'Unknown field "foo" (allowed: tids, batchSize, paused, ratePerSecond, dryRun, previewLimit, pauseAfterFailures, startAt, autoResume, notify, transform, edits)',
    );
    expect(await problem(CreateTaskDto, [ID])).toBe('The request body must be a JSON object');
    expect(await problem(CreateTaskDto, { tids: [ID], paused: 'yes', ratePerSecond: 0 })).toBe(
      'paused must be true or false (got "yes"); ratePerSecond must be a positive number (got 0)',
    );
  });

  it('accepts what the console sends on PUT, and a whole task echoed back', async () => {
    expect(await run(UpdateTaskDto, { _id: ID, status: 'Paused' })).toMatchObject({ _id: ID, status: 'Paused' });
    const echoed = {
      _id: ID,
      status: 'Queued',
      user: 'a@b.c',
      batchSize: 4,
      created: '2024-01-01',
      transactions: [],
      __v: 0,
    };
    expect(await run(UpdateTaskDto, echoed)).toMatchObject({ status: 'Queued' });
    expect(await problem(UpdateTaskDto, { _id: ID })).toBe('status is required');
    expect(await problem(UpdateTaskDto, { status: 'Done' })).toMatch(
      /^status must be one of Queued, Processing, Paused/,
    );
    expect(await problem(UpdateTaskDto, { status: 'Paused', leases: [] })).toMatch(/^Unknown field "leases"/);
  });

  it('validates bulk rerun bodies', async () => {
    expect(await run(BulkRerunDto, { filters: {}, batchSize: 2, pauseQueue: true, dryRun: true })).toMatchObject({
      dryRun: true,
    });
    expect(await problem(BulkRerunDto, { batchSize: 2 })).toBe(
      'filters is required (use {} to select every transaction)',
    );
    // The console sends filters as a JSON string, and its paging (ignored).
    expect(
      await run(BulkRerunDto, { filters: '{"status":"Failed"}', filterLimit: 1000, filterPage: 0, batchSize: 2 }),
    ).toMatchObject({ filters: '{"status":"Failed"}', filterLimit: 1000, filterPage: 0 });
    expect(await problem(BulkRerunDto, { filters: 5, batchSize: 0 })).toBe(
      'filters must be a JSON object, or a JSON string of one (got 5); Invalid batch size specified',
    );
    expect(await problem(BulkRerunDto, { filters: {}, filterLimit: -1 })).toBe(
      'filterLimit must be a whole number, 0 or more (got -1); it is accepted and ignored, as in OpenHIM',
    );
  });
});

describe('reservedKeyPath', () => {
  it('finds prototype-pollution keys at any depth, and nothing in ordinary bodies', () => {
    const { reservedKeyPath } = jest.requireActual('./body-validation.pipe');
    expect(reservedKeyPath(JSON.parse('{"paused":{"constructor":true}}'))).toBe('paused.constructor');
    expect(reservedKeyPath(JSON.parse('{"tids":[{"__proto__":{"x":1}}]}'))).toBe('tids[0].__proto__');
    expect(reservedKeyPath(JSON.parse('{"prototype":1}'))).toBe('prototype');
    expect(reservedKeyPath({ tids: ['5bb777777bbb66cc5d4444ee'], batchSize: 2, paused: true })).toBeUndefined();
  });
});
