import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { get_encoding } from 'tiktoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeIdx } from '../../src/output/megatron.js';
import { dumpDocs, removeDir, tempDir } from './helpers.js';
import { cli, CLI_TEST_TIMEOUT, cliOk, plainStderr } from '../harness/cli.js';

interface MetaRow {
  page_id: number;
  title: string;
  revision: number | null;
  wiki: string;
}

/** Every sequence of a megatron shard with its metadata row, read with our own decoder (the real reader is in test/output). */
function readShard(out: string, taskId: string): Array<{ meta: MetaRow; ids: number[] }> {
  const { dtype, lengths } = decodeIdx(readFileSync(join(out, 'shards', `${taskId}.idx`)), `${taskId}.idx`);
  const bin = readFileSync(join(out, 'shards', `${taskId}.bin`));
  const meta = gunzipSync(readFileSync(join(out, 'shards', `${taskId}.meta.jsonl.gz`)))
    .toString('utf8')
    .trimEnd()
    .split('\n')
    .filter(Boolean);
  expect(meta).toHaveLength(lengths.length);
  const width = dtype === 'uint16' ? 2 : 4;
  let at = 0;
  return Array.from(lengths, (length, i) => {
    const ids = Array.from({ length }, (_, k) =>
      width === 2 ? bin.readUInt16LE(at + 2 * k) : bin.readInt32LE(at + 4 * k),
    );
    at += length * width;
    return { meta: JSON.parse(meta[i] as string) as MetaRow, ids };
  });
}

describe('run --format megatron', { timeout: CLI_TEST_TIMEOUT }, () => {
  let dir: string;
  let dump: string;
  let texts: Map<number, string>;
  beforeAll(async () => {
    dir = tempDir('megatron');
    dump = join(dir, 'mgwiki-20261122-cirrussearch-content.json.gz');
    await cliOk(['synth', '--docs', '120', '--members', '2', '--seed', '21', '--wiki', 'mgwiki', '--out', dump]);
    texts = new Map(
      dumpDocs(gunzipSync(readFileSync(dump)).toString('utf8')).map(({ doc }) => [
        doc.page_id as number,
        doc.text as string,
      ]),
    );
  });
  afterAll(() => removeDir(dir));

  // The <|endoftext|> id when the run appends it.
  const cases = [
    { encoding: 'cl100k_base', eot: 100257, dtype: 'int32' },
    { encoding: 'r50k_base', eot: undefined, dtype: 'uint16' },
  ] as const;
  for (const { encoding, eot, dtype } of cases) {
    it(`${encoding}${eot ? ' with --append-eot' : ''}: every sequence is tiktoken's ids of its page, and verify --deep passes`, async () => {
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
        '40',
        '--concurrency',
        '2',
      ];
      const first = await cliOk(eot === undefined ? args : [...args, '--append-eot']);
      expect(first.stdout).toMatch(/verify: OK/);
      const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
        output_format: string;
        tasks: Array<{ task_id: string }>;
      };
      expect(manifest.output_format).toBe('megatron');
      const reference = get_encoding(encoding);
      const seen: number[] = [];
      let rows = 0;
      for (const { task_id } of manifest.tasks) {
        const marker = JSON.parse(readFileSync(join(out, 'markers', `${task_id}.json`), 'utf8')) as {
          output_format: string;
          rows: number;
          megatron: { dtype: string };
        };
        expect(marker).toMatchObject({ output_format: 'megatron', megatron: { dtype } });
        const sequences = readShard(out, task_id);
        expect(sequences).toHaveLength(marker.rows);
        rows += marker.rows;
        for (const { meta, ids } of sequences) {
          const text = texts.get(meta.page_id) as string;
          const expected = [...reference.encode_ordinary(text)];
          if (eot !== undefined) expected.push(eot);
          expect({ page: meta.page_id, ids }).toEqual({ page: meta.page_id, ids: expected });
          expect(meta.wiki).toBe('mgwiki');
          seen.push(meta.page_id);
        }
      }
      reference.free();
      expect(rows).toBeGreaterThan(80);
      expect(new Set(seen).size).toBe(seen.length);
      const verify = await cli(['verify', '--manifest-uri', join(out, 'manifest.json'), '--output-dir', out, '--deep']);
      expect(verify.stdout).toMatch(/verify: OK/);
      expect(verify.code).toBe(0);
    });
  }

  it('refuses another format into the same output prefix (exit 2), and verify --deep catches a damaged .bin', async () => {
    const out = join(dir, 'cl100k_base');
    const manifestUri = join(out, 'manifest.json');
    const jsonl = await cli([
      'run',
      '--dump',
      dump,
      '--output-dir',
      out,
      '--append-eot',
      '--max-docs-per-task',
      '40',
      '--format',
      'jsonl',
    ]);
    expect(jsonl.code).toBe(2);
    expect(plainStderr(jsonl).join('\n')).toMatch(
      /output_format=megatron, this run asks for jsonl; use another output prefix/,
    );

    const runTasks = await cli(['run-tasks', '--manifest-uri', manifestUri, '--output-dir', out, '--format', 'jsonl']);
    expect(runTasks.code).toBe(2);
    expect(plainStderr(runTasks).join('\n')).toMatch(
      /--format jsonl: the manifest .* was made for output format megatron/,
    );

    // A jsonl manifest kept elsewhere, pointed at the megatron prefix: the markers there refuse it.
    const elsewhere = join(dir, 'jsonl-manifest.json');
    await cliOk(['manifest', '--dump', dump, '--manifest-uri', elsewhere, '--max-docs-per-task', '40', '--append-eot']);
    const mixed = await cli(['run-tasks', '--manifest-uri', elsewhere, '--output-dir', out]);
    expect(mixed.code).toBe(2);
    expect(plainStderr(mixed).join('\n')).toMatch(
      /already holds megatron shards .* this run's format is jsonl; use another output prefix/,
    );

    const manifest = JSON.parse(readFileSync(manifestUri, 'utf8')) as { tasks: Array<{ task_id: string }> };
    const bin = join(out, 'shards', `${manifest.tasks[0]?.task_id}.bin`);
    const bytes = readFileSync(bin);
    bytes[0] = (bytes[0] as number) ^ 0xff;
    writeFileSync(bin, bytes);
    const verify = await cli(['verify', '--manifest-uri', manifestUri, '--output-dir', out, '--deep']);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/\.bin sha256 differs from its marker/);
  });
});
