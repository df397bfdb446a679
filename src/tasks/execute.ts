import { createHash } from 'node:crypto';
import { TaskFailure } from '../errors/index.js';
import { programVersion, type Logger } from '../observability/index.js';
import { cutBatches } from '../dumps/index.js';
import type { DumpEntry, Manifest, Task } from '../manifest/index.js';
import { joinUri, storeFor } from '../storage/index.js';
import type { BadDoc, BatchResult, TokenizerPool } from '../tokenize/index.js';
import { markerKey } from '../output/index.js';
import { readMarker, type Marker, type MarkerFiles } from './marker.js';
import { checkDumpUnchanged, openTaskStream } from './open.js';
import { ShardWriter } from './shard-writer.js';

export interface ExecuteOptions {
  manifest: Manifest;
  /** Folder of the manifest: access-point index files are resolved against it. */
  manifestFolder: string;
  outputPrefix: string;
  pool: TokenizerPool;
  logger: Logger;
  /** Malformed docs tolerated per task (counted in the marker); one more fails the task. */
  maxBadDocs: number;
  compressionLevel: number;
  /** Called after each batch, for progress bars and metrics. */
  onBatch?: (delta: { docs: number; rows: number; tokens: number; textBytes: number }) => void;
}

export const BATCH_LIMITS = { maxDocs: 256, maxBytes: 1 << 20 };

export type TaskOutcome = { status: 'skipped'; marker: Marker } | { status: 'done'; marker: Marker };

/**
 * Execute one task: marker present → skip; else stream its docs through the tokenizer pool into its shard files
 * (`shards/<task_id>.jsonl.gz`, or `.bin`, `.idx` and `.meta.jsonl.gz`), and only once they are durable write
 * `markers/<task_id>.json`. A killed task leaves no marker, and re-running it writes the same shard bytes (batches are
 * deterministic).
 */
export async function executeTask(task: Task, options: ExecuteOptions): Promise<TaskOutcome> {
  const { manifest, outputPrefix } = options;
  const logger = options.logger.child({ task_id: task.task_id });
  const existing = await readMarker(outputPrefix, task.task_id);
  if (existing) return { status: 'skipped', marker: existing };

  const dump = manifest.dumps.find((d) => d.name === task.dump);
  if (!dump) throw new TaskFailure(`task ${task.task_id}: dump ${task.dump} is not in the manifest`);
  await checkDumpUnchanged(dump);
  const startedAt = new Date().toISOString();
  logger.info({ dump: dump.name, docs: task.doc_count }, 'task started');
  const what = `${dump.uri} (task ${task.task_id})`;

  const shard = new ShardWriter(manifest, outputPrefix, task.task_id);
  const tally = new TaskTally(what, options.maxBadDocs);
  let files: MarkerFiles;
  try {
    await tokenizeTask(task, dump, options, what, async (result) => {
      tally.add(result);
      await shard.write(result);
      options.onBatch?.({ docs: result.docs, rows: result.rows, tokens: result.tokens, textBytes: result.textBytes });
    });
    files = await shard.close();
  } catch (error) {
    await shard.abort(error as Error);
    throw error;
  }

  const idsSha256 = tally.idsHash.digest('hex');
  if (tally.docs !== task.doc_count || idsSha256 !== task.ids_sha256) {
    throw new TaskFailure(
      `${what}: read ${tally.docs} docs but the manifest lists ${task.doc_count} (or other ids): the dump changed; re-create the manifest`,
    );
  }
  const marker: Marker = {
    format: 'tokenize-wiki/marker',
    version: 1,
    task_id: task.task_id,
    dump: task.dump,
    docs: tally.docs,
    rows: tally.rows,
    tokens: tally.tokens,
    text_bytes: tally.textBytes,
    skipped: tally.skipped,
    bad_docs: tally.bad,
    ids_sha256: idsSha256,
    output_format: manifest.output_format,
    ...files,
    encoding: manifest.encoding,
    text_field: manifest.text_field,
    append_eot: manifest.append_eot,
    program_version: programVersion,
    started_at: startedAt,
    finished_at: new Date().toISOString(),
  };
  const markerUri = joinUri(outputPrefix, markerKey(task.task_id));
  await storeFor(markerUri).write(markerUri, JSON.stringify(marker, null, 1) + '\n');
  logger.info(
    { docs: marker.docs, rows: marker.rows, tokens: marker.tokens, skipped: tally.skipped, bad_docs: tally.bad.length },
    'task done',
  );
  return { status: 'done', marker };
}

/**
 * The task's docs, read from its access point and cut into batches, through the tokenizer pool. Results reach
 * `write` strictly in batch order while later batches are already being tokenized.
 */
async function tokenizeTask(
  task: Task,
  dump: DumpEntry,
  options: ExecuteOptions,
  what: string,
  write: (result: BatchResult) => Promise<void>,
): Promise<void> {
  const { manifest, pool } = options;
  const { decoded, skipBytes } = await openTaskStream(task, dump, options.manifestFolder);
  const range = {
    skipBytes,
    firstLine: task.first_line,
    firstOffset: task.uncompressed_start,
    docCount: task.doc_count,
  };
  const inFlight: Array<Promise<BatchResult>> = [];
  for await (const batch of cutBatches(decoded, range, BATCH_LIMITS, what)) {
    const { result } = await pool.submit(manifest.encoding, {
      bytes: batch.bytes,
      firstLine: batch.firstLine,
      firstOffset: batch.firstOffset,
      dump: dump.name,
      wiki: dump.wiki,
      textField: manifest.text_field,
      appendEot: manifest.append_eot,
      compressionLevel: options.compressionLevel,
      format: manifest.output_format,
    });
    result.catch(() => {}); // a failure surfaces when the writer reaches it; don't report it twice
    inFlight.push(result);
    while (inFlight.length > pool.size) await write(await (inFlight.shift() as Promise<BatchResult>));
  }
  for (const result of inFlight.splice(0)) await write(await result);
}

/** What a task's batches add up to: the marker's figures, and the hash of every index-line id in order. */
class TaskTally {
  readonly idsHash = createHash('sha256');
  docs = 0;
  rows = 0;
  tokens = 0;
  textBytes = 0;
  readonly skipped: Record<string, number> = {};
  readonly bad: BadDoc[] = [];

  constructor(
    private readonly what: string,
    private readonly maxBadDocs: number,
  ) {}

  add(result: BatchResult): void {
    this.idsHash.update(result.ids);
    for (const [reason, n] of Object.entries(result.skipped)) this.skipped[reason] = (this.skipped[reason] ?? 0) + n;
    this.bad.push(...result.bad);
    if (this.bad.length > this.maxBadDocs) {
      const first = this.bad[0] as BadDoc;
      throw new TaskFailure(
        `${this.what}: ${this.bad.length} malformed doc(s), more than --max-bad-docs ${this.maxBadDocs}; first at line ${first.line}, offset ${first.offset}: ${first.message}`,
      );
    }
    this.docs += result.docs;
    this.rows += result.rows;
    this.tokens += result.tokens;
    this.textBytes += result.textBytes;
  }
}
