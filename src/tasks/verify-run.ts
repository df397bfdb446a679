import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Manifest, Task } from '../manifest/index.js';
import { decodeIdx, DTYPE_BYTES, dtypeFor, pageIdOfRow } from '../output/index.js';
import { eachLimited } from '../util/index.js';
import { joinUri, readBytes, storeFor } from '../storage/index.js';
import { listDoneTaskIds, markerFiles, readMarker, type FileRef, type Marker } from './marker.js';

export interface VerifyReport {
  ok: boolean;
  tasks: number;
  done: number;
  missing: string[];
  problems: string[];
  totals: {
    docs: number;
    rows: number;
    tokens: number;
    text_bytes: number;
    skipped: Record<string, number>;
    bad_docs: number;
  };
}

/**
 * Every doc of the manifest exactly once: each task has a marker whose doc count and id digest equal the manifest's
 * (so the shard covers exactly the task's docs) and the run's output format, each shard file exists with its marker's
 * size, and no page id appears in two rows of one dump. `deep` also re-reads every shard file: sha256, row count, page
 * ids, and for megatron shards an index that matches the marker's pages and tokens and the `.bin`'s size.
 */
export async function verifyRun(
  manifest: Manifest,
  outputPrefix: string,
  options: { deep: boolean },
): Promise<VerifyReport> {
  const done = await listDoneTaskIds(outputPrefix);
  const report: VerifyReport = {
    ok: false,
    tasks: manifest.tasks.length,
    done: 0,
    missing: [],
    problems: [],
    totals: { docs: 0, rows: 0, tokens: 0, text_bytes: 0, skipped: {}, bad_docs: 0 },
  };
  // Tasks are checked a few at a time (reading and gunzipping shards is I/O and thread-pool work), then reported in
  // manifest order.
  const checks = await eachLimited(manifest.tasks, VERIFY_CONCURRENCY, (task) =>
    done.has(task.task_id) ? checkTask(outputPrefix, manifest, task, options) : undefined,
  );
  // Page ids are unique within a dump (two dumps of one wiki legitimately share pages).
  const pageIdsByDump = new Map<string, number[]>();
  manifest.tasks.forEach((task, i) => {
    const check = checks[i];
    if (!check) {
      report.missing.push(task.task_id);
      return;
    }
    const { marker } = check;
    report.done++;
    report.problems.push(...check.problems);
    const pageIds = pageIdsByDump.get(task.dump) ?? [];
    pageIdsByDump.set(task.dump, pageIds);
    for (const id of check.pageIds) pageIds.push(id);
    report.totals.docs += marker.docs;
    report.totals.rows += marker.rows;
    report.totals.tokens += marker.tokens;
    report.totals.text_bytes += marker.text_bytes;
    report.totals.bad_docs += marker.bad_docs.length;
    for (const [reason, n] of Object.entries(marker.skipped))
      report.totals.skipped[reason] = (report.totals.skipped[reason] ?? 0) + n;
  });
  for (const [dump, pageIds] of pageIdsByDump) {
    const sorted = Float64Array.from(pageIds).sort();
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] === sorted[i - 1]) {
        report.problems.push(`page_id ${sorted[i]} of dump ${dump} appears in more than one row`);
        break;
      }
    }
  }
  report.ok = report.missing.length === 0 && report.problems.length === 0;
  return report;
}

/** Shards checked at once: enough to keep the thread pool's gunzip and the store busy, few enough for memory. */
const VERIFY_CONCURRENCY = 4;

interface TaskCheck {
  marker: Marker;
  problems: string[];
  pageIds: number[];
}

async function checkTask(
  outputPrefix: string,
  manifest: Manifest,
  task: Task,
  options: { deep: boolean },
): Promise<TaskCheck> {
  const marker = (await readMarker(outputPrefix, task.task_id)) as Marker;
  const problems: string[] = [];
  const pageIds: number[] = [];
  if (marker.docs !== task.doc_count)
    problems.push(`${task.task_id}: marker has ${marker.docs} docs, manifest ${task.doc_count}`);
  if (marker.ids_sha256 !== task.ids_sha256)
    problems.push(`${task.task_id}: marker covers other docs than the manifest's task (id digest differs)`);
  if (marker.rows + Object.values(marker.skipped).reduce((a, b) => a + b, 0) + marker.bad_docs.length !== marker.docs) {
    problems.push(`${task.task_id}: rows + skipped + bad docs ≠ docs in the marker`);
  }
  if (marker.output_format !== manifest.output_format)
    problems.push(
      `${task.task_id}: marker is of a ${marker.output_format} shard, the manifest's format is ${manifest.output_format}`,
    );
  const sizeProblems = await checkSizes(outputPrefix, marker);
  problems.push(...sizeProblems);
  if (sizeProblems.length === 0 && options.deep)
    problems.push(...(await checkShard(outputPrefix, manifest, marker, pageIds)));
  return { marker, problems, pageIds };
}

async function checkSizes(outputPrefix: string, marker: Marker): Promise<string[]> {
  const problems: string[] = [];
  for (const file of markerFiles(marker)) {
    const uri = joinUri(outputPrefix, file.key);
    const info = await storeFor(uri).stat(uri);
    if (!info) problems.push(`${marker.task_id}: shard file ${file.key} is missing`);
    else if (info.size !== file.bytes)
      problems.push(`${marker.task_id}: ${file.key} is ${info.size} bytes, marker says ${file.bytes}`);
  }
  return problems;
}

/** zlib's default 16 KiB output chunks cost a callback each; a shard is megabytes. */
const GUNZIP_CHUNK_BYTES = 256 * 1024;

/** Hashes what flows through `raw` and compares it with the marker once the caller has read it all. */
function hashing(raw: Readable, file: FileRef, taskId: string): () => string[] {
  const hash = createHash('sha256');
  raw.on('data', (chunk: Buffer) => hash.update(chunk));
  return () => (hash.digest('hex') === file.sha256 ? [] : [`${taskId}: ${file.key} sha256 differs from its marker`]);
}

/** Bytes of a row's start that hold its page id: `{"page_id":` and up to 16 digits and the comma. */
const ROW_HEAD_BYTES = 32;
const NEWLINE = 0x0a;

/**
 * The start of every line of a byte stream (a final line without a newline included), without decoding the rest:
 * a jsonl row is mostly token ids, which only the page id in front of them is needed of.
 */
async function* lineHeads(chunks: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let head = '';
  for await (const chunk of chunks) {
    let at = 0;
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, at);
      const end = newline === -1 ? chunk.length : newline;
      if (head.length < ROW_HEAD_BYTES)
        head += chunk.toString('latin1', at, Math.min(end, at + ROW_HEAD_BYTES - head.length));
      if (newline === -1) break;
      yield head;
      head = '';
      at = newline + 1;
    }
  }
  if (head.length > 0) yield head;
}

/** Rows of a gzip JSONL file (jsonl shard or megatron metadata): each begins with its page id. */
async function checkRows(outputPrefix: string, file: FileRef, marker: Marker, pageIds: number[]): Promise<string[]> {
  const uri = joinUri(outputPrefix, file.key);
  const raw = await storeFor(uri).read(uri);
  const hashed = hashing(raw, file, marker.task_id);
  let rows = 0;
  const problems: string[] = [];
  for await (const head of lineHeads(raw.pipe(createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES })))) {
    rows++;
    const pageId = pageIdOfRow(head);
    if (pageId === undefined) {
      problems.push(`${marker.task_id}: ${file.key} row ${rows} is not a shard row`);
      break;
    }
    pageIds.push(pageId);
  }
  if (rows !== marker.rows)
    problems.push(`${marker.task_id}: ${file.key} has ${rows} rows, marker says ${marker.rows}`);
  return [...problems, ...hashed()];
}

async function checkShard(
  outputPrefix: string,
  manifest: Manifest,
  marker: Marker,
  pageIds: number[],
): Promise<string[]> {
  if (!marker.megatron) return checkRows(outputPrefix, marker.shard, marker, pageIds);
  const { idx, meta, dtype } = marker.megatron;
  const problems = await checkRows(outputPrefix, meta, marker, pageIds);
  const binUri = joinUri(outputPrefix, marker.shard.key);
  const bin = await storeFor(binUri).read(binUri);
  const binHashed = hashing(bin, marker.shard, marker.task_id);
  for await (const _chunk of bin); // drain: the hash sees every byte
  problems.push(...binHashed());
  const idxBytes = await readBytes(joinUri(outputPrefix, idx.key));
  if (createHash('sha256').update(idxBytes).digest('hex') !== idx.sha256)
    problems.push(`${marker.task_id}: ${idx.key} sha256 differs from its marker`);
  try {
    const decoded = decodeIdx(idxBytes, idx.key);
    const tokens = decoded.lengths.reduce((n, l) => n + l, 0);
    if (decoded.dtype !== dtype || dtype !== dtypeFor(manifest.encoding))
      problems.push(
        `${marker.task_id}: ${idx.key} holds ${decoded.dtype} ids, ${dtypeFor(manifest.encoding)} expected for ${manifest.encoding}`,
      );
    if (decoded.lengths.length !== marker.rows)
      problems.push(
        `${marker.task_id}: ${idx.key} has ${decoded.lengths.length} sequences, marker says ${marker.rows} rows`,
      );
    if (tokens !== marker.tokens)
      problems.push(`${marker.task_id}: ${idx.key} has ${tokens} tokens, marker says ${marker.tokens}`);
    if (tokens * DTYPE_BYTES[decoded.dtype] !== marker.shard.bytes)
      problems.push(
        `${marker.task_id}: ${marker.shard.key} is ${marker.shard.bytes} bytes, its index needs ${tokens * DTYPE_BYTES[decoded.dtype]}`,
      );
  } catch (error) {
    problems.push(`${marker.task_id}: ${(error as Error).message}`);
  }
  return problems;
}
