/** Splits a list into slices of at most `size` (for `$in` queries and bulk inserts). */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

/** Runs `work` over `inputs` with at most `concurrency` in flight; rejects on the first failure. */
export async function mapLimit<T, R>(
  inputs: readonly T[],
  concurrency: number,
  work: (input: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(inputs.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(concurrency, inputs.length) }, async () => {
    while (next < inputs.length) {
      const index = next++;
      results[index] = await work(inputs[index]);
    }
  });
  await Promise.all(runners);
  return results;
}

/** How many ids go into one `$in` (keeps each command small, whatever the task size). */
export const ID_QUERY_CHUNK = 5000;
