import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import * as ts from 'typescript';

/**
 * The layering of src/ (docs/design.md, "Layout"), drawn from the imports of every source file
 * (specs excluded: a test may compose layers). Top-level folders, lowest layer first; `main` is
 * src/main*.ts. A folder imports only from lower layers and from folders of its own layer that do
 * not import it back:
 * - no arrow points to a higher layer;
 * - no cycle between top-level folders, nor between the sub-folders of one folder;
 * - src/domain imports nothing but itself (no Nest, no mongoose, no other folder).
 */
const LAYERS: readonly (readonly string[])[] = [
  ['domain', 'common', 'config'],
  ['database'],
  ['auth'],
  ['notifications'],
  ['rerun', 'tasks'],
  ['observability', 'health'],
  ['app', 'bootstrap'],
  ['main'],
];

const SRC = resolve(__dirname, '..', '..', 'src');

function sourceFiles(dir: string, found: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(path, found);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') && !entry.name.endsWith('.d.ts'))
      found.push(path);
  }
  return found;
}

/** `auth`, `main` (src/main*.ts); with `sub`, the sub-folder (`rerun/engine`), else undefined. */
function folderOf(path: string, sub = false): string | undefined {
  const parts = relative(SRC, path).split(sep);
  if (parts.length === 1) return sub ? undefined : parts[0].replace(/\..*$/, '');
  if (!sub) return parts[0];
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : undefined;
}

interface Import {
  file: string;
  specifier: string;
  /** The imported path, resolved (relative specifiers only). */
  target?: string;
}

const imports: Import[] = sourceFiles(SRC).flatMap((file) =>
  ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map(({ fileName }) => ({
    file,
    specifier: fileName,
    target: fileName.startsWith('.') ? resolve(dirname(file), fileName) : undefined,
  })),
);

/** `from -> to` with the first importing file, for messages. */
function arrows(sub: boolean): Map<string, string> {
  const found = new Map<string, string>();
  for (const { file, specifier, target } of imports) {
    if (!target || !target.startsWith(SRC + sep)) continue;
    const from = folderOf(file, sub);
    const to = folderOf(target, sub);
    if (!from || !to || from === to) continue;
    // Sub-folders are compared within one top-level folder only.
    if (sub && folderOf(file) !== folderOf(target)) continue;
    const arrow = `${from} -> ${to}`;
    if (!found.has(arrow)) found.set(arrow, `${relative(SRC, file)} imports ${specifier}`);
  }
  return found;
}

/** The cycles (strongly connected components of more than one folder), each sorted. */
function cycles(edges: Iterable<string>): string[][] {
  const next = new Map<string, string[]>();
  for (const arrow of edges) {
    const [from, to] = arrow.split(' -> ');
    next.set(from, [...(next.get(from) ?? []), to]);
    if (!next.has(to)) next.set(to, []);
  }
  // Tarjan's algorithm.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const to of next.get(node)!) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of next.keys()) if (!index.has(node)) visit(node);
  return components;
}

const layerOf = (folder: string) => LAYERS.findIndex((layer) => layer.includes(folder));
const folders = arrows(false);
const subFolders = arrows(true);
const upward = () =>
  [...folders.keys()].filter((arrow) => {
    const [from, to] = arrow.split(' -> ');
    return layerOf(to) > layerOf(from);
  });
const allCycles = () => [...cycles(folders.keys()), ...cycles(subFolders.keys())];

describe('the import graph of src/', () => {
  it('places every top-level folder of src/ in a layer', () => {
    const unplaced = [...new Set(imports.map(({ file }) => folderOf(file)!))].filter((folder) => layerOf(folder) < 0);
    expect(unplaced).toEqual([]);
  });

  it('has no arrow pointing to a higher layer', () => {
    const offending = upward().map((arrow) => `${arrow} (${folders.get(arrow)})`);
    expect(offending).toEqual([]);
  });

  it('has no cycle between top-level folders, nor between the sub-folders of one folder', () => {
    const offending = allCycles().map((cycle) => cycle.join(' <-> '));
    expect(offending).toEqual([]);
  });

  it('keeps src/domain pure: it imports nothing but itself', () => {
    const offending = imports
      .filter(({ file }) => folderOf(file) === 'domain')
      .filter(({ target }) => !target || folderOf(target) !== 'domain')
      .map(({ file, specifier }) => `${relative(SRC, file)} imports ${specifier}`);
    expect(offending).toEqual([]);
  });
});
