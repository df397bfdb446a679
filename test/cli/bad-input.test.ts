import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../harness/proc.js';
import { s3Connection } from '../harness/s3-env.js';
import { escapeRegExp, removeDir, shardRows, tempDir } from '../core/helpers.js';
import { cli, CLI_TEST_TIMEOUT, cliOk, type CliResult, plainStderr } from '../harness/cli.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('bad');
});
afterAll(() => removeDir(dir));

/** A legacy dump from explicit lines; returns its path and the decoded bytes. */
function writeDump(name: string, lines: string[]): { path: string; decoded: Buffer } {
  const decoded = Buffer.from(lines.join('\n') + '\n');
  const path = join(dir, `${name}-20261122-cirrussearch-content.json.gz`);
  writeFileSync(path, gzipSync(decoded));
  return { path, decoded };
}

const goodDoc = (id: number, extra: Record<string, unknown> = {}): string[] => [
  `{"index":{"_id":"${id}"}}`,
  JSON.stringify({
    page_id: id,
    title: `Page ${id}`,
    namespace: 0,
    wiki: 'testwiki',
    version: 100 + id,
    text: `Text of page ${id}.`,
    ...extra,
  }),
];

function offsetOfLine(bytes: Buffer, line: number): number {
  let at = 0;
  for (let l = 1; l < line; l++) at = bytes.indexOf(0x0a, at) + 1;
  return at;
}

const markersOf = (out: string): string[] =>
  existsSync(join(out, 'markers')) ? readdirSync(join(out, 'markers')) : [];
const allOutput = (r: CliResult): string => `${r.stdout}\n${r.stderr}`;

/** Exit 2 with one line saying what to fix (commander adds a second line pointing at --help). */
function expectUsageError(result: CliResult, message: RegExp): void {
  expect(result.code, allOutput(result)).toBe(2);
  const lines = plainStderr(result);
  expect(lines[0]).toMatch(message);
  expect(lines.slice(1).filter((l) => l !== '(run with --help for usage)')).toEqual([]);
}

describe('bad input through the CLI', { timeout: CLI_TEST_TIMEOUT }, () => {
  it('truncated gzip: exit 1, the message names the dump and the byte offset reached, no marker', async () => {
    const synth = join(dir, 'trunc-20261122-cirrussearch-content.json.gz');
    await cliOk(['synth', '--docs', '80', '--seed', '5', '--out', synth]);
    const whole = readFileSync(synth);
    writeFileSync(synth, whole.subarray(0, Math.floor(whole.length * 0.6)));
    const out = join(dir, 'trunc-out');
    const result = await cli(['run', '--dump', synth, '--output-dir', out]);
    expect(result.code, allOutput(result)).toBe(1);
    const message =
      allOutput(result)
        .split('\n')
        .find((l) => l.includes('truncated')) ?? '';
    expect(message).toContain(synth);
    const offset = Number(/byte offset ~?(\d+)/.exec(message)?.[1]);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(whole.length);
    expect(markersOf(out)).toEqual([]);
  });

  it('a dump corrupted after its manifest was made: the task reaching the damage fails (exit 1) and gets no marker', async () => {
    const synth = join(dir, 'corrupt-20261122-cirrussearch-content.json.gz');
    await cliOk(['synth', '--docs', '120', '--seed', '6', '--out', synth]);
    const out = join(dir, 'corrupt-out');
    await cliOk([
      'manifest',
      '--dump',
      synth,
      '--manifest-uri',
      join(out, 'manifest.json'),
      '--max-docs-per-task',
      '30',
    ]);
    // Same size (so the dump still looks unchanged), but the last third overwritten with zeros.
    const bytes = readFileSync(synth);
    bytes.fill(0, Math.floor(bytes.length * 0.67));
    writeFileSync(synth, bytes);
    const result = await cli([
      'run-tasks',
      '--manifest-uri',
      join(out, 'manifest.json'),
      '--output-dir',
      out,
      '--concurrency',
      '1',
    ]);
    expect(result.code, allOutput(result)).toBe(1);
    const failed = [...result.stdout.matchAll(/^ {2}failed (\S+): (.*)$/gm)];
    expect(failed.length).toBeGreaterThan(0);
    const markers = markersOf(out);
    for (const [, taskId, error] of failed) {
      expect(markers).not.toContain(`${taskId}.json`);
      expect(error).toContain(synth);
      // A codec error names the offset; damage that still decodes is caught by the task's id digest.
      expect(error).toMatch(/offset \d+|the dump changed/);
    }
    expect(markers.length + failed.length).toBe(4);
  });

  describe('malformed JSON line', { timeout: CLI_TEST_TIMEOUT }, () => {
    const lines = [
      ...goodDoc(1),
      ...goodDoc(2),
      `{"index":{"_id":"3"}}`,
      '{"page_id":3,"title":"Broken","text":"no end',
      ...goodDoc(4),
    ];
    let dump: { path: string; decoded: Buffer };
    let out: string;
    beforeAll(() => {
      dump = writeDump('malformed', lines);
      out = join(dir, 'malformed-out');
    });

    it('fails the task (exit 1) naming the dump, line number and offset; no marker', async () => {
      const result = await cli(['run', '--dump', dump.path, '--output-dir', out]);
      expect(result.code, allOutput(result)).toBe(1);
      const failure = /failed \S+: (.*)/.exec(result.stdout)?.[1] ?? '';
      expect(failure).toContain(dump.path);
      expect(failure).toMatch(new RegExp(`line 6, offset ${offsetOfLine(dump.decoded, 6)}\\b`));
      expect(failure).toMatch(/malformed JSON/);
      expect(markersOf(out)).toEqual([]);
    });

    it('passes with --max-bad-docs 1, and the marker counts the bad doc', async () => {
      const result = await cli(['run', '--dump', dump.path, '--output-dir', out, '--max-bad-docs', '1']);
      expect(result.code, allOutput(result)).toBe(0);
      expect(result.stdout).toMatch(/verify: OK[\s\S]*bad docs 1/);
      const [markerFile] = markersOf(out);
      const marker = JSON.parse(readFileSync(join(out, 'markers', markerFile as string), 'utf8')) as {
        docs: number;
        rows: number;
        bad_docs: Array<{ line: number; offset: number }>;
      };
      expect(marker).toMatchObject({
        docs: 4,
        rows: 3,
        bad_docs: [{ line: 6, offset: offsetOfLine(dump.decoded, 6) }],
      });
    });
  });

  it('docs without the text field or with empty text are skipped and counted by reason; page_id falls back to the index line', async () => {
    const lines = [
      ...goodDoc(1),
      `{"index":{"_id":"2"}}`,
      JSON.stringify({ page_id: 2, title: 'No text', namespace: 0, version: 1 }),
      ...goodDoc(3, { text: '' }),
      ...goodDoc(4, { page_type: 'redirect' }),
      `{"index":{"_type":"page","_id":"5"}}`,
      JSON.stringify({ title: 'No page_id', namespace: 0, wiki: 'testwiki', version: 7, text: 'Page five.' }),
    ];
    const dump = writeDump('skips', lines);
    const out = join(dir, 'skips-out');
    const result = await cliOk(['run', '--dump', dump.path, '--output-dir', out]);
    expect(result.stdout).toMatch(/verify: OK/);
    const [markerFile] = markersOf(out);
    const marker = JSON.parse(readFileSync(join(out, 'markers', markerFile as string), 'utf8')) as {
      skipped: Record<string, number>;
      rows: number;
      docs: number;
    };
    expect(marker).toMatchObject({ docs: 5, rows: 2, skipped: { missing_text: 1, empty_text: 1, redirect: 1 } });
    const rows = shardRows(readFileSync(join(out, 'shards', (markerFile as string).replace(/\.json$/, '.jsonl.gz'))));
    expect(rows.map((r) => [r.page_id, r.title, r.revision])).toEqual([
      [1, 'Page 1', 101],
      [5, 'No page_id', 7],
    ]);
  });

  it('a doc with neither page_id nor an index _id fails clearly, naming dump and line', async () => {
    const dump = writeDump('noid', [
      ...goodDoc(1),
      '{"index":{"_type":"page"}}',
      JSON.stringify({ title: 'Orphan', text: 'x' }),
    ]);
    const result = await cli(['run', '--dump', dump.path, '--output-dir', join(dir, 'noid-out')]);
    expect(result.code, allOutput(result)).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(
        `${escapeRegExp(dump.path)}.*line 4, offset ${offsetOfLine(dump.decoded, 4)}.*no page_id and its index line has no numeric _id`,
      ),
    );
  });

  // Cheap processes that mostly wait (node start-up, HTTP retries): run side by side.
  describe.concurrent('usage errors: exit 2 with a one-line message', { timeout: CLI_TEST_TIMEOUT }, () => {
    const dumpArg = (): string => join(dir, 'malformed-20261122-cirrussearch-content.json.gz');
    it('unknown flag', async () => {
      expectUsageError(
        await cli(['run', '--dump', dumpArg(), '--output-dir', dir, '--bogus']),
        /unknown option '--bogus'/,
      );
    });
    it('unknown command', async () => {
      expectUsageError(await cli(['frobnicate']), /unknown command 'frobnicate'/);
    });
    it('bad flag values', async () => {
      expectUsageError(
        await cli(['run', '--dump', dumpArg(), '--output-dir', dir, '--max-docs-per-task', '0']),
        /--max-docs-per-task.*positive whole number/,
      );
      expectUsageError(
        await cli(['run-tasks', '--manifest-uri', 'x', '--output-dir', dir, '--compression-level', '11']),
        /--compression-level.*1 to 9/,
      );
    });
    it('missing required flags', async () => {
      expectUsageError(await cli(['run', '--output-dir', dir]), /missing --dump/);
      expectUsageError(await cli(['run', '--dump', dumpArg()]), /missing --output-prefix/);
      expectUsageError(await cli(['synth', '--out', join(dir, 'x.json.gz')]), /--docs/);
    });
    it('unknown encoding', async () => {
      expectUsageError(
        await cli(['run', '--dump', dumpArg(), '--output-dir', dir, '--encoding', 'gpt5_base']),
        /unknown encoding "gpt5_base".*cl100k_base/,
      );
    });
    it('unreadable dump URIs', async () => {
      expectUsageError(
        await cli(['run', '--dump', join(dir, 'nope-20261122-cirrussearch-content.json.gz'), '--output-dir', dir]),
        /nope-20261122.*not found/,
      );
      expectUsageError(
        await cli(['run', '--dump', join(dir, 'no-such-folder/'), '--output-dir', dir]),
        /no-such-folder.*no dump files/,
      );
      expectUsageError(
        await cli(['run', '--dump', 'ftp://example.org/x.json.gz', '--output-dir', dir]),
        /unsupported URI scheme/,
      );
      const [closed] = await freePorts(1); // free a moment ago: nothing listens there
      const url = `http://127.0.0.1:${closed}/x-20261122-cirrussearch-content.json.gz`;
      expectUsageError(
        await cli(['run', '--dump', url, '--output-dir', dir]),
        new RegExp(`${escapeRegExp(url)}: cannot be read \\(ECONNREFUSED\\)`),
      );
    });
    it('missing S3 credentials, for the output prefix and for a dump', async () => {
      const env = { AWS_ENDPOINT_URL_S3: s3Connection().endpoint, AWS_REGION: 'us-east-1' };
      expectUsageError(
        await cli(['run', '--dump', dumpArg(), '--output-prefix', 's3://some-bucket/run'], { env }),
        /s3:\/\/some-bucket\/run.*no S3 credentials.*AWS_ACCESS_KEY_ID/,
      );
      expectUsageError(
        await cli(['run', '--dump', 's3://some-bucket/x-20261122-cirrussearch-content.json.gz', '--output-dir', dir], {
          env,
        }),
        /no S3 credentials/,
      );
    });
  });

  it('a parts folder without _SUCCESS is refused unless --allow-incomplete-dump', async () => {
    const parts = join(dir, 'incomplete', 'cirrus_search_index', '20261122', 'index_name=partwiki_content');
    await cliOk(['synth', '--docs', '40', '--parts', '2', '--wiki', 'partwiki', '--out', parts]);
    rmSync(join(parts, '_SUCCESS'));
    const out = join(dir, 'incomplete-out');
    expectUsageError(
      await cli(['run', '--dump', parts, '--output-dir', out]),
      /_SUCCESS: missing.*--allow-incomplete-dump/,
    );
    expect(existsSync(out)).toBe(false);
    const ok = await cliOk(['run', '--dump', parts, '--output-dir', out, '--allow-incomplete-dump']);
    expect(ok.stdout).toMatch(/verify: OK/);
    expect(markersOf(out)).toHaveLength(2);
  });
});
