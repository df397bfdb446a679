import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { get_encoding, type TiktokenEncoding } from 'tiktoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpDocs, removeDir, SAMPLE, type ShardRow, shardRows, snapshot, tempDir } from './helpers.js';
import { cli, CLI_TEST_TIMEOUT, cliOk } from '../harness/cli.js';

interface Page {
  page_id: number;
  title: string;
  namespace: number;
  wiki: string;
  version: number;
  text?: string;
  source_text?: string;
  page_type?: string;
}

const pages = dumpDocs(gunzipSync(readFileSync(SAMPLE)).toString('utf8')).map(({ doc }) => doc as unknown as Page);

/** Rows of all shards of a run, in manifest task order. */
function rowsOf(out: string): ShardRow[] {
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
    tasks: Array<{ task_id: string }>;
  };
  return manifest.tasks.flatMap((t) => shardRows(readFileSync(join(out, 'shards', `${t.task_id}.jsonl.gz`))));
}

function expectRows(
  rows: ShardRow[],
  field: 'text' | 'source_text',
  encoding: TiktokenEncoding,
  appendEot: boolean,
): void {
  const kept = pages.filter((p) => p.page_type !== 'redirect' && typeof p[field] === 'string' && p[field] !== '');
  const reference = get_encoding(encoding);
  try {
    const eot = reference.encode('<|endoftext|>', 'all')[0] as number;
    expect(rows.map((r) => r.page_id)).toEqual(kept.map((p) => p.page_id));
    for (const [i, page] of kept.entries()) {
      const ids = Array.from(reference.encode_ordinary(page[field] as string));
      if (appendEot) ids.push(eot);
      const row = rows[i] as ShardRow;
      expect({ ...row, tokens: undefined }).toEqual({
        page_id: page.page_id,
        title: page.title,
        namespace: page.namespace,
        wiki: page.wiki,
        revision: page.version,
        n_tokens: ids.length,
        tokens: undefined,
      });
      if (row.tokens.join() !== ids.join())
        expect({ page_id: page.page_id, tokens: row.tokens }).toEqual({ page_id: page.page_id, tokens: ids });
    }
  } finally {
    reference.free();
  }
}

describe('run on the real sample (simplewikibooks, 200 pages)', { timeout: CLI_TEST_TIMEOUT }, () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('sample');
  });
  afterAll(() => removeDir(dir));

  it('writes one row per page with tiktoken-identical ids; verify passes; a re-run rewrites nothing', async () => {
    const out = join(dir, 'out');
    const args = ['run', '--dump', SAMPLE, '--output-dir', out, '--max-docs-per-task', '60', '--concurrency', '2'];
    const first = await cliOk(args);
    expect(first.stdout).toMatch(/tasks: 4 done, 0 already done \(skipped\), 0 failed/);
    expect(first.stdout).toMatch(/verify: OK: 4\/4 tasks done/);
    expectRows(rowsOf(out), 'text', 'cl100k_base', false);

    // Markers account for every page: rows + skipped by reason = docs.
    const markers = readdirSync(join(out, 'markers')).map(
      (f) =>
        JSON.parse(readFileSync(join(out, 'markers', f), 'utf8')) as {
          docs: number;
          rows: number;
          skipped: Record<string, number>;
          bad_docs: unknown[];
          encoding: string;
        },
    );
    expect(markers.reduce((n, m) => n + m.docs, 0)).toBe(200);
    const skipped: Record<string, number> = {};
    for (const m of markers) for (const [k, v] of Object.entries(m.skipped)) skipped[k] = (skipped[k] ?? 0) + v;
    const emptyText = pages.filter((p) => p.page_type !== 'redirect' && p.text === '').length;
    const missingText = pages.filter((p) => p.page_type !== 'redirect' && typeof p.text !== 'string').length;
    expect(emptyText).toBeGreaterThan(0); // the sample has empty pages: the skip path is exercised on real data
    expect(skipped).toEqual({
      ...(emptyText ? { empty_text: emptyText } : {}),
      ...(missingText ? { missing_text: missingText } : {}),
    });
    expect(markers.every((m) => m.bad_docs.length === 0 && m.encoding === 'cl100k_base')).toBe(true);

    const verify = await cli(['verify', '--manifest-uri', join(out, 'manifest.json'), '--output-dir', out, '--deep']);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/verify: OK/);

    const before = snapshot(out);
    const again = await cliOk(args);
    expect(again.stdout).toMatch(/tasks: 0 done, 4 already done \(skipped\), 0 failed/);
    const after = snapshot(out);
    // Nothing changes, _SUCCESS included (it keeps the time of the first verification).
    for (const [name, file] of before) expect({ name, ...after.get(name) }).toEqual({ name, ...file });
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  });

  it('o200k_base on source_text with --append-eot: ids equal tiktoken too', async () => {
    const out = join(dir, 'o200k');
    await cliOk([
      'run',
      '--dump',
      SAMPLE,
      '--output-dir',
      out,
      '--encoding',
      'o200k_base',
      '--text-field',
      'source_text',
      '--append-eot',
      '--concurrency',
      '2',
    ]);
    expectRows(rowsOf(out), 'source_text', 'o200k_base', true);
  });
});
