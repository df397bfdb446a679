import { gzipSync } from 'node:zlib';
import { BadDocError, indexLineId, parseDoc, type SkipReason } from '../dumps/doc.js';
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
}

export interface BadDoc {
  line: number;
  offset: number;
  message: string;
}

export interface BatchResult {
  /** The batch's shard rows as one gzip member; a shard is the concatenation of its batches' members. */
  member: Uint8Array;
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
const decoder = new TextDecoder('utf-8');
/** Rows are compressed in pieces of about this many characters, so a huge page never becomes one huge string. */
const PIECE_CHARS = 1 << 20;
const TOKENS_PER_PIECE = 1 << 16;

/** Serialized rows as a run of gzip members (a concatenation of members is one gzip stream to readers). */
class MemberWriter {
  private parts: string[] = [];
  private chars = 0;
  private readonly members: Buffer[] = [];
  constructor(private readonly level: number) {}

  add(text: string): void {
    this.parts.push(text);
    this.chars += text.length;
    if (this.chars >= PIECE_CHARS) this.flush();
  }

  /** One member for a batch of ordinary size (as before); an empty batch still gets an (empty) member. */
  finish(): Uint8Array {
    if (this.parts.length > 0 || this.members.length === 0) this.flush();
    if (this.members.length === 1) return this.members[0] as Buffer;
    // Its own exactly sized ArrayBuffer: the result is transferred to the main thread.
    const out = Buffer.from(new ArrayBuffer(this.members.reduce((n, m) => n + m.length, 0)));
    let at = 0;
    for (const member of this.members) at += member.copy(out, at);
    return out;
  }

  private flush(): void {
    this.members.push(gzipSync(this.parts.join(''), { level: this.level }));
    this.parts = [];
    this.chars = 0;
  }
}

/** Parse, tokenize and serialize one batch. Pure apart from CPU: runs inside a worker thread. */
export function processBatch(input: BatchInput, tokenizer: Tokenizer): BatchResult {
  const { bytes } = input;
  const rows = new MemberWriter(input.compressionLevel);
  const result: Omit<BatchResult, 'member'> = { docs: 0, rows: 0, tokens: 0, textBytes: 0, skipped: {}, bad: [], ids: '' };
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
      const outcome = parseDoc(indexId, decoder.decode(bytes.subarray(docStart, docEnd)), input.textField, input.wiki);
      if (outcome.kind === 'skip') {
        result.skipped[outcome.reason] = (result.skipped[outcome.reason] ?? 0) + 1;
      } else {
        const { doc } = outcome;
        const tokens = tokenizer.encodeOrdinary(doc.text);
        if (input.appendEot) tokens.push(tokenizer.endOfText);
        result.rows++;
        result.tokens += tokens.length;
        result.textBytes += Buffer.byteLength(doc.text);
        rows.add(
          `{"page_id":${doc.page_id},"title":${JSON.stringify(doc.title)},"namespace":${doc.namespace},` +
            `"wiki":${JSON.stringify(doc.wiki)},"revision":${doc.revision},"n_tokens":${tokens.length},"tokens":[`,
        );
        for (let i = 0; i < tokens.length; i += TOKENS_PER_PIECE) rows.add((i > 0 ? ',' : '') + tokens.slice(i, i + TOKENS_PER_PIECE).join(','));
        rows.add(']}\n');
      }
    } catch (error) {
      if (!(error instanceof BadDocError)) throw error;
      if (failingLine === line) ids += '\n';
      result.bad.push({ line: failingLine, offset: input.firstOffset + failingOffset, message: error.message });
    }
    line += 2;
  }
  return { ...result, ids, member: rows.finish() };
}

function lineEnd(bytes: Uint8Array, from: number): number {
  const end = bytes.indexOf(NEWLINE, from);
  return end === -1 ? bytes.length : end;
}
