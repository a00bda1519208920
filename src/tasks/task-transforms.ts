import type { AuthenticatedUser } from '../auth/authenticated-user';
import type { AppConfig } from '../config/app-config';
import {
  type ItemEdit,
  type TransformSpec,
  MAX_EDITS,
  validateEdits,
  validateTransform,
} from '../rerun/transform/request-transform';
import { badRequest, forbidden } from './errors';

/**
 * "Fix, then rerun" (issue 24) on the API's side: who may send a task's `transform` and `edits`,
 * their normalised form, and how a task's history says that it transforms its requests. What they
 * may say and what they do is src/rerun/transform/request-transform.ts's.
 */

export const TRANSFORM_FORBIDDEN =
  'Only users in a group listed in TRANSFORM_GROUPS may create tasks that transform their requests (transform, ' +
  'edits) or preview requests';

/** A task's edit as its item stores it (the tid is the item's). */
export type StoredEdit = Omit<ItemEdit, 'tid'>;

/** The `transform` and `edits` of a request body, checked already (by the body's DTO), normalised. */
export interface TransformOptions {
  transform?: TransformSpec;
  /** In the order given; tids in lower case. */
  edits: ItemEdit[];
}

/**
 * The normalised copies the validators return (the DTO has checked them: they do not throw here).
 * `null` and `[]` are no transform, no edits.
 */
export function transformOptionsOf(body: { transform?: unknown; edits?: unknown }): TransformOptions {
  return {
    ...(body.transform !== undefined && body.transform !== null
      ? { transform: validateTransform(body.transform) }
      : {}),
    edits: body.edits !== undefined && body.edits !== null ? validateEdits(body.edits, MAX_EDITS) : [],
  };
}

export const transforms = (options: TransformOptions) => options.transform !== undefined || options.edits.length > 0;

/** 403 unless the user is in a group of TRANSFORM_GROUPS (admins too: the default lists `admin`). */
export function assertMayTransform(user: AuthenticatedUser, config: Pick<AppConfig, 'TRANSFORM_GROUPS'>): void {
  if (!user.groups.some((group) => config.TRANSFORM_GROUPS.includes(group))) throw forbidden(TRANSFORM_FORBIDDEN);
}

/** 400 naming the first edit whose tid is not one of `tids` (lower-case hex). */
export function assertEditsAmong(edits: readonly ItemEdit[], tids: ReadonlySet<string>, among: string): void {
  const index = edits.findIndex((edit) => !tids.has(edit.tid));
  if (index >= 0) {
    throw badRequest(
      `edits[${index}].tid "${edits[index].tid}" is not among ${among}: an edit replaces a part of one of the ` +
        "task's own requests",
    );
  }
}

/** The edits by tid (lower case), as items store them (without their tid). */
export function storedEdits(edits: readonly ItemEdit[]): Map<string, StoredEdit> {
  return new Map(edits.map(({ tid, ...edit }) => [tid.toLowerCase(), edit]));
}

/** Those of `edits` whose tid is among `tids` (a task's own, of a bulk rerun's). */
export function editsOf(
  tids: readonly string[],
  edits: ReadonlyMap<string, StoredEdit> | undefined,
): Map<string, StoredEdit> {
  const own = new Map<string, StoredEdit>();
  if (!edits?.size) return own;
  for (const tid of tids) {
    const edit = edits.get(tid.toLowerCase());
    if (edit) own.set(tid.toLowerCase(), edit);
  }
  return own;
}

/**
 * For the task's `created` history entry: `transforms its requests: body (JSON Patch, 3 operations),
 * headers (set 1, remove 1), path; 2 single edits`. Undefined when the task changes nothing.
 */
export function transformReason(transform: TransformSpec | undefined, editCount: number): string | undefined {
  const parts: string[] = [];
  if (transform?.body) parts.push(`body (JSON Patch, ${plural(transform.body.length, 'operation')})`);
  if (transform?.bodyReplace) parts.push('body (text replacement)');
  if (transform?.headers) {
    const { set, remove } = transform.headers;
    const what = [...(set ? [`set ${Object.keys(set).length}`] : []), ...(remove ? [`remove ${remove.length}`] : [])];
    parts.push(`headers (${what.join(', ')})`);
  }
  if (transform?.path) parts.push('path');
  const edits = editCount > 0 ? plural(editCount, 'single edit') : '';
  if (!parts.length && !edits) return undefined;
  return `transforms its requests: ${[parts.join(', '), edits].filter(Boolean).join('; ')}`;
}

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/** The reasons of a `created` entry, joined (`bulk rerun; transforms its requests: path`). */
export function joinReasons(...reasons: Array<string | undefined>): string | undefined {
  const given = reasons.filter((reason): reason is string => !!reason);
  return given.length ? given.join('; ') : undefined;
}
