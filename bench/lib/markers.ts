import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Tokens and the span from the first task's start to the last task's end, from the markers of one of our runs. */
export async function markerTotals(prefix: string): Promise<{ tokens: number; spanS: number }> {
  const dir = join(prefix, 'markers');
  let tokens = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const name of await readdir(dir)) {
    const m = JSON.parse(await readFile(join(dir, name), 'utf8')) as {
      tokens: number;
      started_at: string;
      finished_at: string;
    };
    tokens += m.tokens;
    first = Math.min(first, Date.parse(m.started_at));
    last = Math.max(last, Date.parse(m.finished_at));
  }
  return { tokens, spanS: (last - first) / 1000 };
}
