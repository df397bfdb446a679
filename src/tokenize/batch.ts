import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import {
  BadDocError,
  HUGE_DOC_LIMITS,
  indexLineId,
  readDocLine,
  type HugeDocLimits,
  type SkipReason,
} from '../dumps/index.js';
import { type OutputFormat, dtypeFor, TokenBuffer, metaRow, SHARD_ROW_END, shardRowHead } from '../output/index.js';
import type { Tokenizer } from './encodings.js';

/** A run of whole documents (index line + document line pairs) cut from a decoded dump. */
export interface BatchInput {
  bytes: Uint8Array;
  /** 1-based line number of the first line, and the uncompressed byte offset of the first byte, in the dump. */
  firstLine: number;
  firstOffset: number;
  dump: string;
  wiki: string;
  textField: string;
  appendEot: boolean;
  compressionLevel: number;
  format: OutputFormat;
}

export interface BadDoc {
  line: number;
  offset: number;
  message: string;
}

export interface BatchResult {
  /**
   * The batch's rows as one gzip member; a shard (jsonl) or metadata file (megatron) is the concatenation of its
   * batches' members. Megatron rows carry no ids: those are in `sequences`, one sequence per row.
   */
  member: Uint8Array;
  sequences?: { bin: Uint8Array; lengths: Int32Array };
  docs: number;
  rows: number;
  tokens: number;
  textBytes: number;
  skipped: Partial<Record<SkipReason, number>>;
  bad: BadDoc[];
  /** Index-line ids in order, newline-terminated: hashed by the caller to prove which docs the task covered. */
  ids: string;
}

const NEWLINE = 0x0a;
const COMMA = 0x2c;
const DIGIT_0 = 0x30;
const decoder = new TextDecoder('utf-8');
const gzipAsync = promisify(gzip);
/** Rows are compressed in pieces of about this many bytes, so a huge page never becomes one huge buffer. */
const PIECE_BYTES = 1 << 20;
/** Room for the widest id and its comma: ids are below 2^32, so at most 10 digits. */
const MAX_ID_BYTES = 11;
/** Ids written between checks that the piece has room. */
const IDS_PER_CHECK = 4096;
/** Pieces waiting for the thread pool before the writer waits: bounds memory while a huge row is written. */
const MAX_PENDING_PIECES = 4;

/**
 * Serialized rows as a run of gzip members (a concatenation of members is one gzip stream to readers). Token ids
 * are written as ASCII digits straight into a byte buffer: joining millions of numbers into strings and
 * re-encoding them as UTF-8 for zlib cost more than tokenizing some texts. Each full piece is compressed on
 * libuv's thread pool while this thread goes on tokenizing.
 */
class RowWriter {
  /** The piece being written: allocated at its first byte (so none after a batch's last flush), handed to zlib by flush. */
  private current: Buffer | undefined;
  private length = 0;
  private readonly members: Promise<Buffer>[] = [];
  /** Members before this index are known to be compressed. */
  private settled = 0;
  constructor(private readonly level: number) {}

  /** One row: `head` (the JSON up to the ids), the ids of all `chunks` in order, and the row's end. */
  async row(head: string, chunks: readonly ArrayLike<number>[]): Promise<void> {
    await this.text(head);
    let first = true;
    for (const ids of chunks) {
      for (let i = 0; i < ids.length; i += IDS_PER_CHECK) {
        if (this.length >= PIECE_BYTES) await this.flush();
        const end = Math.min(ids.length, i + IDS_PER_CHECK);
        let at = this.length;
        const piece = this.piece();
        let j = i;
        if (first) {
          at = writeDigits(piece, at, ids[j++] as number);
          first = false;
        }
        for (; j < end; j++) at = writeCommaAndDigits(piece, at, ids[j] as number);
        this.length = at;
      }
    }
    await this.text(SHARD_ROW_END);
  }

  /** One row without ids (the megatron format's metadata line). */
  async line(text: string): Promise<void> {
    await this.text(text);
  }

  /** One member for a batch of ordinary size; an empty batch still gets an (empty) member. */
  async finish(): Promise<Uint8Array> {
    if (this.length > 0 || this.members.length === 0) await this.flush();
    const members = await Promise.all(this.members);
    // Its own exactly sized ArrayBuffer: the result is transferred to the main thread.
    const out = Buffer.from(new ArrayBuffer(members.reduce((n, m) => n + m.length, 0)));
    let at = 0;
    for (const member of members) at += member.copy(out, at);
    return out;
  }

  private async text(value: string): Promise<void> {
    const needed = Buffer.byteLength(value);
    if (this.length + needed > this.piece().length) {
      await this.flush();
      if (needed > this.piece().length) this.current = Buffer.allocUnsafe(needed);
    }
    this.length += this.piece().write(value, this.length);
  }

  private piece(): Buffer {
    return (this.current ??= Buffer.allocUnsafe(PIECE_ALLOC_BYTES));
  }

  private async flush(): Promise<void> {
    const piece = this.piece();
    // One output chunk as large as the piece could compress to: zlib's default 16 KiB chunks would call back into
    // this thread (and allocate) some twenty times per piece. zlib hands back a view into that chunk, which a huge
    // row's many waiting members would each keep whole: an exact copy holds a third of it.
    const member = gzipAsync(piece.subarray(0, this.length), {
      level: this.level,
      chunkSize: gzipChunkBytes(this.length),
    });
    this.members.push(member.then((compressed) => Buffer.from(compressed)));
    // The pool reads the piece while this thread writes on: the next piece is another buffer.
    this.current = undefined;
    this.length = 0;
    while (this.members.length - this.settled > MAX_PENDING_PIECES) await this.members[this.settled++];
  }
}

/** At least zlib's bound on deflate output for `length` input bytes, plus the gzip header and trailer. */
function gzipChunkBytes(length: number): number {
  return length + (length >> 10) + 1024;
}

/** A piece has room for IDS_PER_CHECK more ids once PIECE_BYTES are written. */
const PIECE_ALLOC_BYTES = PIECE_BYTES + IDS_PER_CHECK * MAX_ID_BYTES;

/** Ids below this have their comma and digits in the digits table: every id of the encodings we ship. */
const TABLE_IDS = 1 << 18;
const SLOT_BYTES = 8;
let digitsTable: Uint8Array | undefined;

/** Slot of id i: its length with the comma, the comma, then its digits (at most 6 below 2^18). */
function buildDigitsTable(): Uint8Array {
  const table = new Uint8Array(TABLE_IDS * SLOT_BYTES);
  const scratch = Buffer.alloc(16);
  for (let id = 0; id < TABLE_IDS; id++) {
    const slot = id * SLOT_BYTES;
    const end = writeDigits(scratch, 0, id);
    table[slot] = end + 1;
    table[slot + 1] = COMMA;
    table.set(scratch.subarray(0, end), slot + 2);
  }
  return table;
}

/**
 * A comma and the id's digits at `at`; returns the position after them. Copying a table slot is a third faster than
 * dividing by ten per digit, and this runs once per token.
 */
function writeCommaAndDigits(out: Buffer, at: number, id: number): number {
  if (id >= TABLE_IDS) {
    out[at] = COMMA;
    return writeDigits(out, at + 1, id);
  }
  const table = (digitsTable ??= buildDigitsTable());
  const slot = id * SLOT_BYTES;
  const length = table[slot] as number;
  for (let k = 0; k < length; k++) out[at + k] = table[slot + 1 + k] as number;
  return at + length;
}

/** Writes the decimal digits of an id (an integer in [0, 2^32)) at `at`; returns the position after them. */
function writeDigits(out: Buffer, at: number, id: number): number {
  // Branches instead of a counting loop: this runs once per token, tens of millions of times per task.
  const digits =
    id < 10
      ? 1
      : id < 100
        ? 2
        : id < 1e3
          ? 3
          : id < 1e4
            ? 4
            : id < 1e5
              ? 5
              : id < 1e6
                ? 6
                : id < 1e7
                  ? 7
                  : id < 1e8
                    ? 8
                    : id < 1e9
                      ? 9
                      : 10;
  let end = at + digits;
  let rest = id;
  while (rest >= 10) {
    const quotient = (rest / 10) >>> 0;
    out[--end] = DIGIT_0 + (rest - quotient * 10);
    rest = quotient;
  }
  out[--end] = DIGIT_0 + rest;
  return at + digits;
}

/**
 * Parse, tokenize and serialize one batch. Pure apart from CPU: runs inside a worker thread, and settles once
 * the last piece is compressed (the thread is free for the next batch meanwhile).
 */
export async function processBatch(
  input: BatchInput,
  tokenizer: Tokenizer,
  huge: HugeDocLimits = HUGE_DOC_LIMITS,
): Promise<BatchResult> {
  const { bytes } = input;
  const rows = new RowWriter(input.compressionLevel);
  const sequences = input.format === 'megatron' ? new TokenBuffer(dtypeFor(tokenizer.encoding)) : undefined;
  const result: Omit<BatchResult, 'member'> = {
    docs: 0,
    rows: 0,
    tokens: 0,
    textBytes: 0,
    skipped: {},
    bad: [],
    ids: '',
  };
  let ids = '';
  let position = 0;
  let line = input.firstLine;
  while (position < bytes.length) {
    const indexStart = position;
    const indexEnd = lineEnd(bytes, indexStart);
    const docStart = indexEnd + 1;
    const docEnd = docStart <= bytes.length ? lineEnd(bytes, docStart) : bytes.length;
    position = docEnd + 1;
    result.docs++;
    let failingLine = line;
    let failingOffset = indexStart;
    try {
      const indexId = indexLineId(decoder.decode(bytes.subarray(indexStart, indexEnd)));
      ids += (indexId ?? '') + '\n';
      failingLine = line + 1;
      failingOffset = Math.min(docStart, bytes.length);
      if (docStart > bytes.length) throw new BadDocError('the dump ends after an index line: document line missing');
      const outcome = readDocLine(indexId, bytes, docStart, docEnd, input, huge);
      if (outcome.kind === 'skip') {
        result.skipped[outcome.reason] = (result.skipped[outcome.reason] ?? 0) + 1;
      } else {
        const { doc } = outcome;
        const chunks: ArrayLike<number>[] = [];
        let count = 0;
        for (const text of outcome.texts) {
          const ids = tokenizer.encodeOrdinary(text);
          // A huge text's ids wait in compact arrays until the row's n_tokens is known; a whole text's stay as is.
          chunks.push(outcome.huge ? Uint32Array.from(ids) : ids);
          count += ids.length;
          result.textBytes += Buffer.byteLength(text);
        }
        if (input.appendEot) {
          chunks.push([tokenizer.endOfText]);
          count++;
        }
        result.rows++;
        result.tokens += count;
        if (sequences) {
          sequences.append(chunks);
          await rows.line(metaRow(doc));
        } else {
          await rows.row(shardRowHead(doc, count), chunks);
        }
      }
    } catch (error) {
      if (!(error instanceof BadDocError)) throw error;
      if (failingLine === line) ids += '\n';
      result.bad.push({ line: failingLine, offset: input.firstOffset + failingOffset, message: error.message });
    }
    line += 2;
  }
  return { ...result, ids, member: await rows.finish(), ...(sequences ? { sequences: sequences.finish() } : {}) };
}

function lineEnd(bytes: Uint8Array, from: number): number {
  const end = bytes.indexOf(NEWLINE, from);
  return end === -1 ? bytes.length : end;
}
