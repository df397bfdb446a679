import { createHash, type Hash } from 'node:crypto';
import { BadDocError, indexLineId, type DumpFile } from '../dumps/index.js';
import type { Logger } from '../observability/index.js';
import { eachLimited } from '../util/index.js';
import type { OutputFormat } from '../output/index.js';
import type { EncodingName } from '../tokenize/index.js';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type DumpEntry, type Manifest, type Task } from './schema.js';

export interface ManifestOptions {
  textField: string;
  encoding: EncodingName;
  appendEot: boolean;
  outputFormat: OutputFormat;
  maxDocsPerTask: number;
  /** Cap on a task's uncompressed bytes, so no task holds more than ~256 MB of text. */
  maxTaskBytes: number;
}

export const DEFAULT_MAX_DOCS_PER_TASK = 2000;
export const DEFAULT_MAX_TASK_BYTES = 256 * 1024 * 1024;

const NEWLINE = 0x0a;

/** Task boundaries found by the scan, before access points are attached. */
export interface TaskCut {
  first_doc: number;
  doc_count: number;
  first_line: number;
  uncompressed_start: number;
  uncompressed_end: number;
  ids_sha256: string;
}

/**
 * One streaming pass over decoded dump bytes: find doc boundaries (index line + document line), hash the index-line
 * ids, and cut tasks at `maxDocsPerTask` docs or `maxTaskBytes` bytes, whichever comes first.
 */
export class TaskCutter {
  readonly cuts: TaskCut[] = [];
  private offset = 0; // uncompressed bytes consumed
  private lines = 0; // lines completed
  private lineStart = 0;
  private indexCarry: Buffer[] = [];
  private task = this.newTask(0, 1, 0);
  private docs = 0;
  private started = false;
  /**
   * Hooks for access points: called synchronously while `push` handles the chunk in which a task starts or ends,
   * so the caller can tie the task to that chunk's position in the compressed file. A start is also reported after
   * the last doc (a task that never gets docs); `finish` returns only real tasks.
   */
  onTaskStart?: (uncompressedStart: number) => void;
  onTaskEnd?: (uncompressedEnd: number) => void;

  constructor(
    private readonly maxDocs: number,
    private readonly maxBytes: number,
  ) {}

  get uncompressedBytes(): number {
    return this.offset;
  }
  get totalDocs(): number {
    return this.docs;
  }

  push(chunk: Buffer): void {
    if (!this.started) {
      this.started = true;
      this.onTaskStart?.(0);
    }
    let search = 0;
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, search);
      const isIndexLine = this.lines % 2 === 0;
      if (newline === -1) {
        if (isIndexLine && search < chunk.length) this.indexCarry.push(Buffer.from(chunk.subarray(search)));
        break;
      }
      if (isIndexLine) {
        const tail = chunk.subarray(search, newline);
        this.noteIndexLine(this.indexCarry.length === 0 ? tail : Buffer.concat([...this.indexCarry, tail]));
        this.indexCarry = [];
      }
      search = newline + 1;
      this.lines++;
      this.lineStart = this.offset + search;
      if (!isIndexLine) this.endDoc(this.lineStart);
    }
    this.offset += chunk.length;
  }

  /** Finish at end of input: a last line without a newline, or an index line without its document, still counts. */
  finish(): TaskCut[] {
    const pendingLine = this.offset > this.lineStart;
    if (pendingLine && this.lines % 2 === 0) this.noteIndexLine(Buffer.concat(this.indexCarry));
    if (pendingLine) this.lines++;
    // The last doc ended without a newline, or the dump ends after an index line: either way it is a doc
    // (the task reports a missing document line with its line number).
    if (pendingLine || this.lines % 2 === 1) this.endDoc(this.offset);
    if (this.task.doc_count > 0) this.closeTask(this.offset);
    return this.cuts;
  }

  private noteIndexLine(bytes: Buffer): void {
    let id = '';
    try {
      id = indexLineId(bytes.toString('utf8')) ?? '';
    } catch (error) {
      if (!(error instanceof BadDocError)) throw error; // the task reports malformed lines with their line numbers
    }
    this.task.hash.update(id + '\n');
  }

  private endDoc(end: number): void {
    this.docs++;
    this.task.doc_count++;
    if (this.task.doc_count >= this.maxDocs || end - this.task.uncompressed_start >= this.maxBytes) {
      this.closeTask(end);
      this.task = this.newTask(this.docs, this.lines + 1, end);
      this.onTaskStart?.(end);
    }
  }

  private closeTask(end: number): void {
    const { hash, ...cut } = this.task;
    this.cuts.push({ ...cut, uncompressed_end: end, ids_sha256: hash.digest('hex') });
    this.onTaskEnd?.(end);
  }

  private newTask(
    firstDoc: number,
    firstLine: number,
    start: number,
  ): Omit<TaskCut, 'uncompressed_end' | 'ids_sha256'> & { hash: Hash } {
    return {
      first_doc: firstDoc,
      doc_count: 0,
      first_line: firstLine,
      uncompressed_start: start,
      hash: createHash('sha256'),
    };
  }
}

export function taskId(dumpName: string, ordinal: number): string {
  return `${dumpName}-${String(ordinal).padStart(6, '0')}`;
}

export interface DumpScan {
  entry: DumpEntry;
  tasks: Task[];
}

export function toScan(dump: DumpFile, cutter: TaskCutter, tasks: Task[]): DumpScan {
  return {
    entry: {
      name: dump.name,
      uri: dump.uri,
      wiki: dump.wiki,
      compression: dump.compression,
      size: dump.size,
      ...(dump.etag === undefined ? {} : { etag: dump.etag }),
      ...(dump.lastModified === undefined ? {} : { last_modified: dump.lastModified }),
      docs: cutter.totalDocs,
      uncompressed_bytes: cutter.uncompressedBytes,
    },
    tasks,
  };
}

/** Build the manifest of a run: one scan per dump (a few in parallel), tasks in dump order. Deterministic. */
export async function buildManifest(
  dumps: readonly DumpFile[],
  options: ManifestOptions,
  scan: (dump: DumpFile) => Promise<DumpScan>,
  logger: Logger,
  parallelDumps = 2,
): Promise<Manifest> {
  const scans = await eachLimited(dumps, parallelDumps, async (dump) => {
    const started = Date.now();
    const scanned = await scan(dump);
    logger.info(
      {
        dump: dump.name,
        docs: scanned.entry.docs,
        tasks: scanned.tasks.length,
        seconds: (Date.now() - started) / 1000,
      },
      'dump scanned',
    );
    return scanned;
  });
  const tasks = scans.flatMap((s) => s.tasks);
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    text_field: options.textField,
    encoding: options.encoding,
    append_eot: options.appendEot,
    output_format: options.outputFormat,
    max_docs_per_task: options.maxDocsPerTask,
    max_task_bytes: options.maxTaskBytes,
    dumps: scans.map((s) => s.entry),
    tasks,
    totals: {
      dumps: scans.length,
      tasks: tasks.length,
      docs: scans.reduce((n, s) => n + s.entry.docs, 0),
      uncompressed_bytes: scans.reduce((n, s) => n + s.entry.uncompressed_bytes, 0),
    },
  };
}
