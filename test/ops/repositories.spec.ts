import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/**
 * One repository per collection (docs/design.md, "Layout"): every mongoose model is injected by
 * exactly one file of src/, and that file is a `*.repository.ts` (the API and the engine share it).
 */
const SRC = resolve(__dirname, '..', '..', 'src');

function sourceFiles(dir: string, found: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(path, found);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')) found.push(path);
  }
  return found;
}

const injections = new Map<string, string[]>();
for (const file of sourceFiles(SRC)) {
  for (const [, model] of readFileSync(file, 'utf8').matchAll(/@InjectModel\(\s*(\w+)\.name\s*\)/g)) {
    injections.set(model, [...(injections.get(model) ?? []), relative(SRC, file)]);
  }
}

describe('the repositories of src/', () => {
  it('finds the models of every collection the service uses', () => {
    expect([...injections.keys()].sort()).toEqual(
      [
        'AlertLog',
        'AutoRetry',
        'Channel',
        'ContactGroup',
        'Notification',
        'Passport',
        'RerunGuard',
        'RerunHold',
        'Session',
        'Task',
        'TaskItem',
        'Transaction',
        'User',
      ].sort(),
    );
  });

  it('injects each model in one repository only', () => {
    const shared = [...injections].filter(([, files]) => new Set(files).size > 1);
    expect(shared).toEqual([]);
    const notRepositories = [...injections].filter(([, [file]]) => !file.endsWith('.repository.ts'));
    expect(notRepositories).toEqual([]);
  });
});
