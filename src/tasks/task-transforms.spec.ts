import { HttpException } from '@nestjs/common';
import {
  assertEditsAmong,
  assertMayTransform,
  editsOf,
  joinReasons,
  storedEdits,
  TRANSFORM_FORBIDDEN,
  transformOptionsOf,
  transformReason,
} from './task-transforms';

const TID_A = 'aaaaaaaaaaaaaaaaaaaaaaaa';
const TID_B = 'bbbbbbbbbbbbbbbbbbbbbbbb';

describe('task transforms (API side)', () => {
  it('says what a task changes in its requests, for its created history entry', () => {
    expect(transformReason(undefined, 0)).toBeUndefined();
    expect(
      transformReason(
        {
          body: [
            { op: 'test', path: '/a', value: 1 },
            { op: 'remove', path: '/b' },
            { op: 'add', path: '/c', value: 2 },
          ],
          headers: { set: { 'x-a': '1', 'x-b': '2' } },
          path: { pattern: 'a', replacement: 'b' },
        },
        2,
      ),
    ).toBe('transforms its requests: body (JSON Patch, 3 operations), headers (set 2), path; 2 single edits');
    expect(transformReason({ bodyReplace: { pattern: 'a', replacement: 'b' }, headers: { remove: ['x-a'] } }, 0)).toBe(
      'transforms its requests: body (text replacement), headers (remove 1)',
    );
    expect(transformReason({ body: [{ op: 'remove', path: '/b' }] }, 1)).toBe(
      'transforms its requests: body (JSON Patch, 1 operation); 1 single edit',
    );
    expect(transformReason(undefined, 1)).toBe('transforms its requests: 1 single edit');
    expect(joinReasons('bulk rerun', undefined, 'transforms its requests: path')).toBe(
      'bulk rerun; transforms its requests: path',
    );
    expect(joinReasons(undefined, '')).toBeUndefined();
  });

  it('normalises transform and edits, null and [] being none', () => {
    expect(transformOptionsOf({})).toEqual({ edits: [] });
    expect(transformOptionsOf({ transform: null, edits: null })).toEqual({ edits: [] });
    expect(
      transformOptionsOf({
        transform: { path: { pattern: '^/a', replacement: '/b' } },
        edits: [{ tid: TID_A.toUpperCase(), body: 'x' }],
      }),
    ).toEqual({
      transform: { path: { pattern: '^/a', replacement: '/b', flags: 'g' } },
      edits: [{ tid: TID_A, body: 'x' }],
    });
  });

  it("keeps each task's own edits, without their tid", () => {
    const edits = storedEdits([
      { tid: TID_A, body: 'a' },
      { tid: TID_B, headers: { 'x-b': '1' } },
    ]);
    expect(editsOf([TID_B.toUpperCase(), 'cccccccccccccccccccccccc'], edits)).toEqual(
      new Map([[TID_B, { headers: { 'x-b': '1' } }]]),
    );
    expect(editsOf([TID_A], undefined).size).toBe(0);
  });

  it('refuses users outside TRANSFORM_GROUPS (403), and edits of other transactions (400)', () => {
    const user = (groups: string[]) => ({ email: 'u@example.org', groups, isAdmin: groups.includes('admin') });
    const status = (run: () => void) => {
      try {
        run();
        return 'allowed';
      } catch (error) {
        return [(error as HttpException).getStatus(), (error as HttpException).getResponse()];
      }
    };
    const config = { TRANSFORM_GROUPS: ['fixers'] };
    expect(status(() => assertMayTransform(user(['clerks', 'fixers']), config))).toBe('allowed');
    expect(status(() => assertMayTransform(user(['admin']), config))).toEqual([403, TRANSFORM_FORBIDDEN]);
    expect(status(() => assertMayTransform(user(['Fixers']), config))).toEqual([403, TRANSFORM_FORBIDDEN]);
    expect(status(() => assertEditsAmong([{ tid: TID_A }, { tid: TID_B }], new Set([TID_A]), 'the tids'))).toEqual([
      400,
      `edits[1].tid "${TID_B}" is not among the tids: an edit replaces a part of one of the task's own requests`,
    ]);
  });
});
