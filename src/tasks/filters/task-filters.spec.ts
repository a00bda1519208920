import { HttpException } from '@nestjs/common';
import { parseDateRange, parseFiltersParam, parsePaging } from './query-params';
import {
  itemMatches,
  itemQuery,
  TASK_ITEM_PAGING,
  TASK_LIST_PAGING,
  toTaskItemFilter,
  toTaskListQuery,
} from './task-filters';

const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(HttpException);
    return (error as HttpException).getResponse() as string;
  }
  throw new Error('expected a 400');
};

describe('task list filters', () => {
  it('accepts the console filters, with created as a JSON string', () => {
    const query = toTaskListQuery(
      parseFiltersParam({
        filters: JSON.stringify({
          status: 'Paused',
          user: 'root@openhim.org',
          created: JSON.stringify({ $gte: '2024-05-01T00:00:00+02:00', $lte: '2024-05-01T23:59:59+02:00' }),
        }),
      }),
    );
    expect(query).toEqual({
      status: 'Paused',
      user: 'root@openhim.org',
      created: { $gte: new Date('2024-04-30T22:00:00Z'), $lte: new Date('2024-05-01T21:59:59Z') },
    });
  });

  it('accepts created as an object, status with $in, and no filters at all', () => {
    expect(toTaskListQuery({ created: { $gt: '2024-05-01' }, status: { $in: ['Queued', 'Processing'] } })).toEqual({
      created: { $gt: new Date('2024-05-01T00:00:00Z') },
      status: { $in: ['Queued', 'Processing'] },
    });
    expect(toTaskListQuery(parseFiltersParam({}))).toEqual({});
    expect(toTaskListQuery(parseFiltersParam({ filters: '{}' }))).toEqual({});
  });

  it('names what is wrong', () => {
    expect(message(() => toTaskListQuery({ foo: 1 }))).toBe('Unknown filter "foo" (allowed: status, user, created)');
    expect(message(() => toTaskListQuery({ status: 'Sleeping' }))).toMatch(/^status must be one of Queued, Processing/);
    expect(message(() => toTaskListQuery({ status: { $ne: 'Queued' } }))).toMatch(/Unknown operator in status: "\$ne"/);
    expect(message(() => toTaskListQuery({ user: { $regex: '.*' } }))).toMatch(/^user must be a string/);
    expect(message(() => toTaskListQuery({ created: '{"$where":"1"}' }))).toMatch(
      /Unknown operator in created: "\$where"/,
    );
    expect(message(() => toTaskListQuery({ created: { $gte: 'yesterday' } }))).toBe(
      'created.$gte must be an ISO 8601 date (got "yesterday")',
    );
    expect(message(() => toTaskListQuery({ created: 'not json' }))).toMatch(/^created must be a date range/);
    expect(message(() => parseFiltersParam({ filters: '{"status":' }))).toMatch(/^filters must be a JSON object: /);
    expect(message(() => parseFiltersParam({ filters: '[1]' }))).toBe('filters must be a JSON object');
    expect(message(() => parseFiltersParam({ filters: ['{}', '{}'] }))).toBe(
      'Query parameter filters must be given once',
    );
  });

  it('parses date ranges strictly', () => {
    expect(parseDateRange('created', { $lt: '2024-05-01T10:00:00.123Z' })).toEqual({
      $lt: new Date('2024-05-01T10:00:00.123Z'),
    });
    expect(() => parseDateRange('created', { $lt: 1714557600000 })).toThrow(HttpException);
    expect(() => parseDateRange('created', {})).toThrow(HttpException);
    expect(() => parseDateRange('created', { $lt: '2024-13-45' })).toThrow(HttpException);
  });
});

describe('paging', () => {
  it('defaults when absent, accepts 0, has no maximum (as OpenHIM)', () => {
    expect(parsePaging({}, TASK_ITEM_PAGING)).toEqual({ skip: 0, limit: 100 });
    expect(parsePaging({ filterPage: '2', filterLimit: '10' }, TASK_ITEM_PAGING)).toEqual({ skip: 20, limit: 10 });
    expect(parsePaging({ filterPage: '0', filterLimit: '0' }, TASK_ITEM_PAGING)).toEqual({ skip: 0, limit: 0 });
    expect(parsePaging({ filterPage: '0', filterLimit: '100000' }, TASK_ITEM_PAGING)).toEqual({
      skip: 0,
      limit: 100000,
    });
    expect(parsePaging({ filterLimit: '9007199254740991' }, TASK_LIST_PAGING)).toEqual({
      skip: 0,
      limit: Number.MAX_SAFE_INTEGER,
    });
    expect(message(() => parsePaging({ filterLimit: '9007199254740992' }, TASK_ITEM_PAGING))).toBe(
      'filterLimit must be an integer from 0 to 9007199254740991 (got "9007199254740992")',
    );
    expect(message(() => parsePaging({ filterPage: '2', filterLimit: '9007199254740991' }, TASK_ITEM_PAGING))).toBe(
      'filterPage is too large',
    );
    expect(message(() => parsePaging({ filterPage: '-1' }, TASK_ITEM_PAGING))).toMatch(
      /^filterPage must be an integer/,
    );
    expect(message(() => parsePaging({ filterPage: 'x' }, TASK_ITEM_PAGING))).toMatch(/^filterPage must be an integer/);
  });
});

describe('task item filters', () => {
  const items = [
    { tid: 'a', tstatus: 'Completed', rerunStatus: 'Successful' },
    { tid: 'b', tstatus: 'Completed', rerunStatus: 'Failed', error: '' },
    { tid: 'c', tstatus: 'Failed', error: 'Transaction c could not be found' },
    { tid: 'd', tstatus: 'Queued' },
  ];
  const tids = (filters: Record<string, unknown>) =>
    items.filter((item) => itemMatches(item, toTaskItemFilter(filters))).map((item) => item.tid);

  it('filters embedded items like the items query', () => {
    expect(tids({})).toEqual(['a', 'b', 'c', 'd']);
    expect(tids({ tstatus: 'Completed' })).toEqual(['a', 'b']);
    expect(tids({ tstatus: 'Completed', rerunStatus: 'Successful' })).toEqual(['a']);
    expect(tids({ hasErrors: 'yes' })).toEqual(['c']);
    expect(tids({ hasErrors: 'no' })).toEqual(['a', 'b', 'd']);
    expect(tids({ tstatus: '', rerunStatus: '' })).toEqual(['a', 'b', 'c', 'd']);
    expect(itemQuery(toTaskItemFilter({ tstatus: 'Failed', hasErrors: 'yes' }))).toEqual({
      tstatus: 'Failed',
      error: { $exists: true, $nin: [null, ''] },
    });
  });

  it('refuses other keys and values', () => {
    expect(message(() => toTaskItemFilter({ status: 'Completed' }))).toBe(
      'Unknown filter "status" (allowed: tstatus, rerunStatus, hasErrors)',
    );
    expect(message(() => toTaskItemFilter({ tstatus: 'Done' }))).toMatch(
      /^tstatus must be one of Queued, Processing, Completed, Failed/,
    );
    expect(message(() => toTaskItemFilter({ hasErrors: 'maybe' }))).toBe(
      'hasErrors must be "yes" or "no" (got "maybe")',
    );
  });
});
