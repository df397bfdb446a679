import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMegatronVenv, megatronPython } from '../harness/megatron.js';
import { repoRoot } from '../harness/paths.js';
import { removeDir, tempDir } from '../core/helpers.js';
import { CLI_TEST_TIMEOUT, cliOk } from '../harness/cli.js';

const READER = join(repoRoot, 'test', 'output', 'read_megatron.py');

interface ReadResult {
  datasets: number;
  sequences: number;
  tokens: number;
}

/**
 * Our megatron output read by Megatron-LM's own `IndexedDataset` (megatron-core from PyPI), every sequence compared
 * with Python tiktoken's ids of its page: per-task shards, the exported dataset and exported parts.
 */
describe("megatron output read by Megatron-LM's IndexedDataset", { timeout: CLI_TEST_TIMEOUT }, () => {
  let venv: string;
  let dir: string;
  let dump: string;
  beforeAll(async () => {
    venv = await ensureMegatronVenv();
    dir = tempDir('megatron-reader');
    dump = join(dir, 'rdwiki-20261122-cirrussearch-content.json.gz');
    await cliOk(['synth', '--docs', '200', '--members', '2', '--seed', '41', '--wiki', 'rdwiki', '--out', dump]);
  });
  afterAll(() => removeDir(dir));

  type Datasets = Array<{ prefix: string; meta: string }>;
  const read = async (spec: {
    encoding: string;
    appendEot: boolean;
    dtype: string;
    groups: Record<string, Datasets>;
  }): Promise<Record<string, ReadResult>> => {
    const arg = JSON.stringify({
      dump,
      text_field: 'text',
      encoding: spec.encoding,
      append_eot: spec.appendEot,
      dtype: spec.dtype,
      groups: spec.groups,
    });
    const line = (await megatronPython(venv, READER, [arg])).split('\n').find((l) => l.startsWith('RESULT '));
    return JSON.parse((line as string).slice('RESULT '.length)) as Record<string, ReadResult>;
  };

  const cases = [
    { encoding: 'cl100k_base', appendEot: true, dtype: 'int32' },
    { encoding: 'r50k_base', appendEot: false, dtype: 'uint16' },
  ];
  for (const { encoding, appendEot, dtype } of cases) {
    it(`${encoding}${appendEot ? ' with --append-eot' : ''}: every shard, the exported dataset and exported parts`, async () => {
      const out = join(dir, encoding);
      const args = [
        'run',
        '--dump',
        dump,
        '--output-dir',
        out,
        '--format',
        'megatron',
        '--encoding',
        encoding,
        '--max-docs-per-task',
        '50',
        '--concurrency',
        '2',
      ];
      await cliOk(appendEot ? [...args, '--append-eot'] : args);
      const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
        tasks: Array<{ task_id: string }>;
      };
      const markers = manifest.tasks.map(
        (t) =>
          JSON.parse(readFileSync(join(out, 'markers', `${t.task_id}.json`), 'utf8')) as {
            rows: number;
            tokens: number;
            shard: { bytes: number };
          },
      );
      const rows = markers.reduce((n, m) => n + m.rows, 0);
      const tokens = markers.reduce((n, m) => n + m.tokens, 0);

      const shards = manifest.tasks.map((t) => ({
        prefix: join(out, 'shards', t.task_id),
        meta: join(out, 'shards', `${t.task_id}.meta.jsonl.gz`),
      }));
      const exportArgs = ['export', '--manifest-uri', join(out, 'manifest.json'), '--output-dir', out];
      const single = join(dir, 'datasets', encoding);
      await cliOk([...exportArgs, '--to', single]);

      const parted = join(dir, 'parts', encoding);
      await cliOk([
        ...exportArgs,
        '--to',
        parted,
        '--max-part-bytes',
        String(2 * Math.max(...markers.map((m) => m.shard.bytes))),
      ]);
      const record = JSON.parse(readFileSync(`${parted}.export.json`, 'utf8')) as {
        parts: Array<{ prefix: string; meta: { uri: string } }>;
      };
      expect(record.parts.length).toBeGreaterThan(1);
      const parts = record.parts.map((p) => ({ prefix: p.prefix, meta: p.meta.uri }));

      const groups = { shards, export: [{ prefix: single, meta: `${single}.meta.jsonl.gz` }], parts };
      expect(await read({ encoding, appendEot, dtype, groups })).toEqual({
        shards: { datasets: manifest.tasks.length, sequences: rows, tokens },
        export: { datasets: 1, sequences: rows, tokens },
        parts: { datasets: parts.length, sequences: rows, tokens },
      });
    });
  }
});
