import { BadDocError } from './bad-doc.js';
import { isStringLiteral, literalPieces, smallFields, topLevelFields, withoutStringMember } from './huge-doc.js';

export { BadDocError };

/**
 * One CirrusSearch document = an index line (`{"index":{"_id":"1"}}`, older dumps add `"_type":"page"`)
 * followed by a document line. This module (with huge-doc.ts for lines too long to decode whole) turns the pair into
 * the fields a shard row needs and the text to tokenize, or a reason to skip: the tokenizer receives documents.
 */
export type SkipReason = 'redirect' | 'missing_text' | 'empty_text';

export interface ParsedDoc {
  page_id: number;
  title: string;
  namespace: number;
  wiki: string;
  revision: number | null;
  text: string;
}

export type DocOutcome = { kind: 'doc'; doc: ParsedDoc } | { kind: 'skip'; reason: SkipReason; page_id: number };

/** The `_id` of an index line; throws BadDocError when the line is not an index line. */
export function indexLineId(indexLine: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(indexLine);
  } catch {
    throw new BadDocError('expected an index line ({"index":{"_id":…}}) but found malformed JSON');
  }
  const index = (parsed as { index?: { _id?: unknown } } | null)?.index;
  if (typeof index !== 'object' || index === null)
    throw new BadDocError('expected an index line ({"index":{"_id":…}})');
  const id = index._id;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

export function parseDoc(
  indexId: string | undefined,
  docLine: string,
  textField: string,
  fallbackWiki: string,
): DocOutcome {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(docLine) as Record<string, unknown>;
  } catch (error) {
    throw new BadDocError(`malformed JSON document (${(error as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new BadDocError('document line is not a JSON object');
  const fields = docFields(indexId, raw, fallbackWiki);
  if (fields.redirect) return { kind: 'skip', reason: 'redirect', page_id: fields.page_id };
  const text = raw[textField];
  if (typeof text !== 'string') return { kind: 'skip', reason: 'missing_text', page_id: fields.page_id };
  if (text.length === 0) return { kind: 'skip', reason: 'empty_text', page_id: fields.page_id };
  const { redirect: _redirect, ...doc } = fields;
  return { kind: 'doc', doc: { ...doc, text } };
}

/** Everything a shard row needs from a parsed document line except its text (huge texts are read apart). */
export function docFields(
  indexId: string | undefined,
  raw: Record<string, unknown>,
  fallbackWiki: string,
): Omit<ParsedDoc, 'text'> & { redirect: boolean } {
  const pageId =
    typeof raw.page_id === 'number'
      ? raw.page_id
      : indexId !== undefined && /^\d+$/.test(indexId)
        ? Number(indexId)
        : undefined;
  if (pageId === undefined) throw new BadDocError('document has no page_id and its index line has no numeric _id');
  return {
    page_id: pageId,
    redirect: raw.page_type === 'redirect',
    title: typeof raw.title === 'string' ? raw.title : '',
    namespace: typeof raw.namespace === 'number' ? raw.namespace : 0,
    wiki: typeof raw.wiki === 'string' ? raw.wiki : fallbackWiki,
    revision: typeof raw.version === 'number' ? raw.version : null,
  };
}

/** Document lines longer than `lineBytes` are read field by field, their text in pieces of about `pieceBytes`. */
export interface HugeDocLimits {
  lineBytes: number;
  pieceBytes: number;
}
export const HUGE_DOC_LIMITS: HugeDocLimits = { lineBytes: 8 << 20, pieceBytes: 1 << 20 };

/** What a document line is read against: the dump's text field, and the wiki to name when the line names none. */
export interface DocContext {
  textField: string;
  wiki: string;
}

const decoder = new TextDecoder('utf-8');

/**
 * The document line in bytes[start, end) (after the index line whose `_id` is `indexId`), ready to tokenize. Lines
 * longer than `huge.lineBytes` are never decoded as one string.
 */
export function readDocLine(
  indexId: string | undefined,
  bytes: Uint8Array,
  start: number,
  end: number,
  context: DocContext,
  huge: HugeDocLimits = HUGE_DOC_LIMITS,
): DocToTokenize {
  return end - start > huge.lineBytes
    ? readHugeDoc(indexId, bytes, start, end, context, huge.pieceBytes)
    : ordinaryDoc(parseDocLine(indexId, bytes, start, end, context));
}

/** Fields that can be as large as the text and are never read unless they are the text field. */
const UNREAD_FIELDS = ['source_text'];

/** parseDoc of a document line, without decoding or parsing large fields that are not the text field. */
function parseDocLine(
  indexId: string | undefined,
  bytes: Uint8Array,
  start: number,
  end: number,
  context: DocContext,
): DocOutcome {
  for (const field of UNREAD_FIELDS) {
    if (field === context.textField) continue;
    const line = withoutStringMember(bytes, start, end, field);
    if (!line) continue;
    try {
      return parseDoc(indexId, decoder.decode(line), context.textField, context.wiki);
    } catch (error) {
      // A malformed line is reported as parsing the whole of it reports it.
      if (!(error instanceof BadDocError)) throw error;
      break;
    }
  }
  return parseDoc(indexId, decoder.decode(bytes.subarray(start, end)), context.textField, context.wiki);
}

/** A document to tokenize: its row fields and its text, whole or (for a huge document) in pieces. */
export type DocToTokenize =
  | { kind: 'skip'; reason: SkipReason }
  | { kind: 'doc'; doc: Omit<ParsedDoc, 'text'>; texts: Iterable<string>; huge: boolean };

function ordinaryDoc(outcome: DocOutcome): DocToTokenize {
  if (outcome.kind === 'skip') return outcome;
  const { text, ...doc } = outcome.doc;
  return { kind: 'doc', doc, texts: [text], huge: false };
}

/** The same outcome as parseDoc, without ever holding the line, or the text, as one string. */
function readHugeDoc(
  indexId: string | undefined,
  bytes: Uint8Array,
  start: number,
  end: number,
  input: DocContext,
  pieceBytes: number,
): DocToTokenize {
  const fields = topLevelFields(bytes, start, end);
  const { redirect, ...doc } = docFields(indexId, smallFields(bytes, fields), input.wiki);
  if (redirect) return { kind: 'skip', reason: 'redirect' };
  const text = fields.get(input.textField);
  if (!text || !isStringLiteral(bytes, text)) return { kind: 'skip', reason: 'missing_text' };
  if (text.end - text.start === 2) return { kind: 'skip', reason: 'empty_text' };
  return { kind: 'doc', doc, texts: literalPieces(bytes, text, pieceBytes), huge: true };
}
