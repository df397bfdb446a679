import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutBatches } from '../../src/dumps/batches.js';
import { random, synthLegacyDump, synthPartsDump } from '../../src/dumps/synth.js';
import { createManifest, manifestFolderOf, readManifest, type Manifest, type Task } from '../../src/manifest/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { executeTask } from '../../src/tasks/execute.js';
import { openTaskStream } from '../../src/tasks/open.js';
import { TokenizerPool } from '../../src/tokenize/pool.js';
import { removeDir, tempDir } from '../core/helpers.js';

const logger = createLogger({ test: 'random-access' });
const synthBase = { seed: 11, wiki: 'rawiki', bigPageMb: 0, members: 1, parts: 1 };
const plan = (maxDocsPerTask: number) => ({
  textField: 'text',
  encoding: 'cl100k_base' as const,
  appendEot: false,
  outputFormat: 'jsonl' as const,
  maxDocsPerTask,
  maxTaskBytes: 256 * 1024 * 1024,
});

/** Index-line ids of a decoded dump, in order: the docs a dump holds. */
function idsOf(decoded: Buffer): string[] {
  return decoded
    .toString('utf8')
    .split('\n')
    .filter((_, i) => i % 2 === 0)
    .filter((line) => line.length > 0)
    .map((line) => String((JSON.parse(line) as { index: { _id: string } }).index._id));
}

/** What a task reads from its access point: its docs' ids, and how many decoded bytes it pulled. */
async function readTask(
  task: Task,
  manifest: Manifest,
  manifestUri: string,
): Promise<{ ids: string[]; decodedBytes: number }> {
  const dump = manifest.dumps.find((d) => d.name === task.dump)!;
  const { decoded, skipBytes } = await openTaskStream(task, dump, manifestFolderOf(manifestUri));
  let decodedBytes = 0;
  const counted = (async function* () {
    for await (const chunk of decoded) {
      decodedBytes += chunk.length;
      yield chunk;
    }
  })();
  const range = {
    skipBytes,
    firstLine: task.first_line,
    firstOffset: task.uncompressed_start,
    docCount: task.doc_count,
  };
  const ids: string[] = [];
  for await (const batch of cutBatches(counted, range, { maxDocs: 64, maxBytes: 1 << 20 }, task.task_id))
    ids.push(...idsOf(batch.bytes));
  return { ids, decodedBytes };
}

let dir: string;
const files: Record<string, { uris: string[]; decoded: Buffer[] }> = {};

beforeAll(async () => {
  dir = tempDir('random-access');
  const single = join(dir, 'rawiki-20261122-cirrussearch-content.json.gz');
  await synthLegacyDump(single, { ...synthBase, docs: 900 });
  const multi = join(dir, 'multi', 'rawiki-20261122-cirrussearch-content.json.gz');
  await synthLegacyDump(multi, { ...synthBase, seed: 12, docs: 700, members: 4 });
  const parts = join(dir, 'cirrus_search_index', '20261122', 'index_name=rawiki_content');
  const partFiles = await synthPartsDump(parts, { ...synthBase, seed: 13, docs: 900, parts: 2 });
  files.single = { uris: [single], decoded: [gunzipSync(readFileSync(single))] };
  files.multi = { uris: [multi], decoded: [gunzipSync(readFileSync(multi))] };
  files.parts = {
    uris: [parts],
    decoded: partFiles.map((f) => execFileSync('bzip2', ['-dc', f], { maxBuffer: 1 << 30 })),
  };
}, 600_000);

afterAll(() => removeDir(dir));

describe('tasks start at access points in the middle of compressed dumps', () => {
  // Random task sizes (seeded, so a failure replays): boundaries land anywhere relative to deflate and bzip2 blocks.
  const rand = random(2026);
  const sizes = [1 + Math.floor(rand() * 20), 20 + Math.floor(rand() * 80), 100 + Math.floor(rand() * 300)];

  for (const layout of ['single', 'multi', 'parts'] as const) {
    it(`${layout}: the union of all tasks' docs is the dump's docs, in order, no gaps or duplicates (task sizes ${sizes.join(', ')})`, async () => {
      const { uris, decoded } = files[layout]!;
      const expected = decoded.flatMap(idsOf);
      for (const size of sizes) {
        const manifestUri = join(dir, `${layout}-${size}`, 'manifest.json');
        const manifest = await createManifest(uris, manifestUri, plan(size), logger);
        expect(manifest.totals.docs).toBe(expected.length);
        const seen: string[] = [];
        for (const task of manifest.tasks) {
          const { ids } = await readTask(task, manifest, manifestUri);
          expect(ids.length, task.task_id).toBe(task.doc_count);
          seen.push(...ids);
        }
        expect(seen).toEqual(expected);
      }
    }, 600_000);
  }

  it('the same dumps and parameters give a byte-identical manifest', async () => {
    const a = join(dir, 'det-a', 'manifest.json');
    const b = join(dir, 'det-b', 'manifest.json');
    await createManifest(files.parts!.uris, a, plan(50), logger);
    await createManifest(files.parts!.uris, b, plan(50), logger);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  }, 300_000);

  for (const layout of ['single', 'parts'] as const) {
    it(`${layout}: a task in the last tenth of a file requests and decodes only its own stretch`, async () => {
      const { uris, decoded } = files[layout]!;
      const manifestUri = join(dir, `tenth-${layout}`, 'manifest.json');
      const manifest = await createManifest(uris, manifestUri, plan(30), logger);
      const dump = manifest.dumps.at(-1)!;
      const total = decoded.at(-1)!.length;
      const last = manifest.tasks.filter((t) => t.dump === dump.name).at(-1)!;
      expect(last.uncompressed_start).toBeGreaterThan(total * 0.9);
      const access = last.access as { compressed_offset: number; compressed_end: number };
      // Requested: one ranged read [compressed_offset, compressed_end) starting at the access point before the task
      // (a deflate piece of ~1 MiB, or a bzip2 block of up to 900 kB, back) — never the file from its start.
      expect(access.compressed_offset).toBeGreaterThan(dump.size * 0.6);
      expect(access.compressed_end - access.compressed_offset).toBeLessThan(dump.size * 0.4);
      // Decoded: the task's own bytes plus at most the distance back to its access point.
      const { decodedBytes, ids } = await readTask(last, manifest, manifestUri);
      expect(ids.length).toBe(last.doc_count);
      const own = last.uncompressed_end - last.uncompressed_start;
      expect(decodedBytes).toBeGreaterThanOrEqual(own);
      expect(decodedBytes - own).toBeLessThan(1.1 * 1024 * 1024);
      expect(decodedBytes).toBeLessThan(total * 0.5);
    }, 300_000);
  }
});

describe('manifest and dump integrity', () => {
  it('a corrupt manifest, an older-version manifest and a task list that is not a manifest give clear errors', async () => {
    const folder = join(dir, 'bad-manifests');
    const good = join(folder, 'good', 'manifest.json');
    await createManifest(files.single!.uris, good, plan(200), logger);
    const corrupt = join(folder, 'corrupt.json');
    writeFileSync(corrupt, readFileSync(good, 'utf8').slice(0, 300));
    await expect(readManifest(corrupt)).rejects.toThrow(/corrupt\.json: not valid JSON/);
    const older = join(folder, 'older.json');
    writeFileSync(older, JSON.stringify({ ...JSON.parse(readFileSync(good, 'utf8')), version: 0 }));
    await expect(readManifest(older)).rejects.toThrow(/older\.json: version: manifest version 0 is not supported/);
    const missingKey = join(folder, 'missing.json');
    const parsed = JSON.parse(readFileSync(good, 'utf8'));
    delete parsed.tasks[0].ids_sha256;
    writeFileSync(missingKey, JSON.stringify(parsed));
    await expect(readManifest(missingKey)).rejects.toThrow(/missing\.json: tasks\.0\.ids_sha256/);
  }, 300_000);

  it('a dump changed after manifesting: the task refuses to run and writes no marker', async () => {
    const folder = join(dir, 'changed');
    const dumpPath = join(folder, 'rawiki-20261122-cirrussearch-content.json.gz');
    execFileSync('mkdir', ['-p', folder]);
    writeFileSync(dumpPath, readFileSync(files.single!.uris[0]!));
    const manifestUri = join(folder, 'manifest.json');
    const manifest = await createManifest([dumpPath], manifestUri, plan(300), logger);
    appendFileSync(dumpPath, Buffer.from('trailing bytes of a re-published dump'));
    const pool = new TokenizerPool(1);
    try {
      const outputPrefix = join(folder, 'out');
      await expect(
        executeTask(manifest.tasks[0]!, {
          manifest,
          manifestFolder: folder,
          outputPrefix,
          pool,
          logger,
          maxBadDocs: 0,
          compressionLevel: 1,
        }),
      ).rejects.toThrow(/changed since the manifest was made/);
      expect(() => readFileSync(join(outputPrefix, 'markers', `${manifest.tasks[0]!.task_id}.json`))).toThrow(/ENOENT/);
    } finally {
      await pool.close();
    }
  }, 300_000);
});
