import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The README's code block (```lang) between `<!-- marker:start -->` and `<!-- marker:end -->`. */
export async function readmeBlock(marker: string, lang = 'bash'): Promise<string> {
  const readme = await readFile(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const section = readme.split(`<!-- ${marker}:start -->`)[1]?.split(`<!-- ${marker}:end -->`)[0];
  const block = section ? new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section)?.[1] : undefined;
  if (!block) throw new Error(`README.md has no ${lang} block between its ${marker} markers`);
  return block;
}

/**
 * A README example as an operator pastes it: its variable lines (`NAME=...`) as a prelude, then one
 * command per entry (continuation lines joined, blank and comment lines dropped).
 */
export async function readmeExample(marker: string): Promise<{ prelude: string; commands: string[] }> {
  const lines = (await readmeBlock(marker))
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  const isAssignment = (line: string) => /^[A-Z]+=/.test(line);
  return { prelude: lines.filter(isAssignment).join('\n'), commands: lines.filter((line) => !isAssignment(line)) };
}

/** Runs a command line in bash (20 s at most). */
export function bash(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { timeout: 20000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}
