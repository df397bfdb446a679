/**
 * Documents too large to hold as JS strings several times over (a 50 MB page is a 100+ MB document line once
 * `source_text` is counted). Instead of decoding and JSON-parsing the whole line, this finds the top-level fields in
 * the raw bytes, parses only the small ones, and decodes the text field in pieces that can be tokenized one by one.
 */
import { BadDocError } from './bad-doc.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SPACE = 0x20;
const decoder = new TextDecoder('utf-8');

/** Byte range [start, end) of a top-level value in a document line; strings include their quotes. */
export interface FieldRange {
  start: number;
  end: number;
}

export const isStringLiteral = (bytes: Uint8Array, range: FieldRange): boolean => bytes[range.start] === QUOTE;

const isWhitespace = (b: number): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
const isAsciiLetter = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);

function skipWhitespace(bytes: Uint8Array, at: number, end: number): number {
  while (at < end && isWhitespace(bytes[at] as number)) at++;
  return at;
}

/**
 * The document line in [start, end) without its `"<field>":"…"` member, or undefined when the line has no such member
 * after another one. `,"<field>":"` with unescaped quotes can only be a key in valid JSON (a quote after a comma opens
 * a string), so no scan of the structure is needed; a malformed line is for the caller to parse whole. Used to skip
 * decoding and parsing `source_text` (as large as `text`) when the text field is another one.
 */
export function withoutStringMember(
  bytes: Uint8Array,
  start: number,
  end: number,
  field: string,
): Uint8Array | undefined {
  const key = Buffer.from(`,${JSON.stringify(field)}:"`);
  const line = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start);
  const at = line.indexOf(key);
  if (at === -1) return undefined;
  let valueEnd: number;
  try {
    valueEnd = stringEnd(line, at + key.length - 1, line.length);
  } catch {
    return undefined;
  }
  const out = new Uint8Array(line.length - (valueEnd - at));
  out.set(line.subarray(0, at));
  out.set(line.subarray(valueEnd), at);
  return out;
}

/** The position just after the string literal whose opening quote is at `at`. */
function stringEnd(bytes: Uint8Array, at: number, end: number): number {
  let quote = at;
  for (;;) {
    quote = bytes.indexOf(QUOTE, quote + 1);
    if (quote === -1 || quote >= end)
      throw new BadDocError(`malformed JSON document (unterminated string at byte ${at})`);
    let backslashes = 0;
    while (bytes[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
  }
}

/** The position just after the value (of any kind) starting at `at`. */
function valueEnd(bytes: Uint8Array, at: number, end: number): number {
  const first = bytes[at];
  if (first === QUOTE) return stringEnd(bytes, at, end);
  let depth = 0;
  let pos = at;
  while (pos < end) {
    const b = bytes[pos] as number;
    if (b === QUOTE) {
      pos = stringEnd(bytes, pos, end);
      continue;
    }
    if (b === 0x7b || b === 0x5b) depth++;
    else if (b === 0x7d || b === 0x5d) {
      if (depth === 0) return pos;
      depth--;
      if (depth === 0) return pos + 1;
    } else if (b === 0x2c && depth === 0) return pos;
    pos++;
  }
  if (depth === 0) return pos;
  throw new BadDocError(`malformed JSON document (unterminated value at byte ${at})`);
}

/** Every top-level field of the JSON object in bytes[start, end), by key. Throws BadDocError when it is not one. */
export function topLevelFields(bytes: Uint8Array, start: number, end: number): Map<string, FieldRange> {
  const fields = new Map<string, FieldRange>();
  let at = skipWhitespace(bytes, start, end);
  if (bytes[at] !== 0x7b) throw new BadDocError('document line is not a JSON object');
  at = skipWhitespace(bytes, at + 1, end);
  if (bytes[at] === 0x7d) return fields;
  for (;;) {
    if (bytes[at] !== QUOTE) throw new BadDocError(`malformed JSON document (expected a key at byte ${at - start})`);
    const keyEnd = stringEnd(bytes, at, end);
    const key = JSON.parse(decoder.decode(bytes.subarray(at, keyEnd))) as string;
    at = skipWhitespace(bytes, keyEnd, end);
    if (bytes[at] !== 0x3a) throw new BadDocError(`malformed JSON document (expected ':' at byte ${at - start})`);
    const valueStart = skipWhitespace(bytes, at + 1, end);
    const valueStop = valueEnd(bytes, valueStart, end);
    let valueLast = valueStop;
    while (valueLast > valueStart && isWhitespace(bytes[valueLast - 1] as number)) valueLast--;
    if (valueLast === valueStart)
      throw new BadDocError(`malformed JSON document (missing value at byte ${valueStart - start})`);
    fields.set(key, { start: valueStart, end: valueLast });
    at = skipWhitespace(bytes, valueStop, end);
    if (bytes[at] === 0x2c) {
      at = skipWhitespace(bytes, at + 1, end);
      continue;
    }
    if (bytes[at] === 0x7d && skipWhitespace(bytes, at + 1, end) === end) return fields;
    throw new BadDocError(`malformed JSON document (expected ',' or '}' at byte ${at - start})`);
  }
}

/** Strings longer than this are left out of `smallFields`: no field a row needs besides the text is that long. */
const SMALL_STRING_BYTES = 64 << 10;

/**
 * The fields of the line as an object, leaving out every long string (source_text, auxiliary_text, the text
 * field itself): what is left is small enough to parse the ordinary way.
 */
export function smallFields(bytes: Uint8Array, fields: Map<string, FieldRange>): Record<string, unknown> {
  const parts: string[] = [];
  for (const [key, range] of fields) {
    if (isStringLiteral(bytes, range) && range.end - range.start > SMALL_STRING_BYTES) continue;
    parts.push(`${JSON.stringify(key)}:${decoder.decode(bytes.subarray(range.start, range.end))}`);
  }
  try {
    return JSON.parse(`{${parts.join(',')}}`) as Record<string, unknown>;
  } catch (error) {
    throw new BadDocError(`malformed JSON document (${(error as Error).message})`);
  }
}

/**
 * The text of a string literal in pieces of about `pieceBytes`, cut only between an ASCII letter and a space that is
 * followed by an ASCII letter: every tiktoken split pattern ends a piece there (the space starts the next word's
 * piece), so tokenizing the pieces one by one gives exactly the ids of the whole text (tested against tiktoken).
 * A cut never falls inside an escape sequence: no backslash in the six bytes before it.
 */
export function* literalPieces(bytes: Uint8Array, literal: FieldRange, pieceBytes: number): Generator<string> {
  const end = literal.end - 1; // the closing quote
  let start = literal.start + 1;
  while (start < end) {
    let cut = Math.min(end, start + pieceBytes);
    while (cut < end && !safeCut(bytes, cut, start)) cut++;
    yield decodeLiteralPart(bytes, start, cut);
    start = cut;
  }
}

function safeCut(bytes: Uint8Array, at: number, floor: number): boolean {
  if (bytes[at] !== SPACE || !isAsciiLetter(bytes[at - 1] as number) || !isAsciiLetter(bytes[at + 1] as number))
    return false;
  for (let i = Math.max(floor, at - 6); i < at; i++) if (bytes[i] === BACKSLASH) return false;
  return true;
}

function decodeLiteralPart(bytes: Uint8Array, start: number, end: number): string {
  const raw = decoder.decode(bytes.subarray(start, end));
  // Without escapes the bytes are the text; otherwise JSON.parse resolves them (the part is a whole literal's inside).
  if (bytes.subarray(start, end).indexOf(BACKSLASH) === -1) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch (error) {
    throw new BadDocError(`malformed JSON document (${(error as Error).message})`);
  }
}
