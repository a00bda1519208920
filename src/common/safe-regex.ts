/**
 * Regular expressions sent by clients (the `/bulkrerun` filters, a task's `transform`): how long
 * they may be, and the shape refused because matching it can take exponential time.
 */

/** Longest regular expression a client may send (`request.path` and the like). */
export const MAX_REGEX_LENGTH = 500;

const QUANTIFIER_BRACES = /^\{\d+(,\d*)?\}/;

/**
 * Whether a (compiling) pattern applies `*`, `+` or `{n,m}` to a group that contains one of them,
 * like `(a+)+` or `(x*y)*`: the classic catastrophic-backtracking shape, refused so that one
 * request cannot keep the database (a filter) or a worker (a transform) busy. `?` repeats nothing;
 * escapes and classes are skipped.
 */
export function repeatsARepetition(pattern: string): boolean {
  const groups: boolean[] = []; // per open group: whether it holds a repetition
  const isQuantifier = (at: number) =>
    pattern[at] === '*' || pattern[at] === '+' || (pattern[at] === '{' && QUANTIFIER_BRACES.test(pattern.slice(at)));
  let inClass = false;
  for (let at = 0; at < pattern.length; at++) {
    const char = pattern[at];
    if (char === '\\') {
      at++;
    } else if (inClass) {
      if (char === ']') inClass = false;
    } else if (char === '[') {
      inClass = true;
    } else if (char === '(') {
      groups.push(false);
    } else if (char === ')') {
      const repeatsInside = groups.pop() ?? false;
      const repeated = isQuantifier(at + 1);
      if (repeatsInside && repeated) return true;
      if ((repeatsInside || repeated) && groups.length) groups[groups.length - 1] = true;
    } else if (isQuantifier(at) && groups.length) {
      groups[groups.length - 1] = true;
    }
  }
  return false;
}
