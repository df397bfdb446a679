/**
 * One CirrusSearch document = an index line (`{"index":{"_id":"1"}}`, older dumps add `"_type":"page"`)
 * followed by a document line. This module turns the pair into the fields a shard row needs, or a reason to skip.
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

export class BadDocError extends Error {}

/** The `_id` of an index line; throws BadDocError when the line is not an index line. */
export function indexLineId(indexLine: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(indexLine);
  } catch {
    throw new BadDocError('expected an index line ({"index":{"_id":…}}) but found malformed JSON');
  }
  const index = (parsed as { index?: { _id?: unknown } } | null)?.index;
  if (typeof index !== 'object' || index === null) throw new BadDocError('expected an index line ({"index":{"_id":…}})');
  const id = index._id;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

export function parseDoc(indexId: string | undefined, docLine: string, textField: string, fallbackWiki: string): DocOutcome {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(docLine) as Record<string, unknown>;
  } catch (error) {
    throw new BadDocError(`malformed JSON document (${(error as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BadDocError('document line is not a JSON object');
  const fields = docFields(indexId, raw, fallbackWiki);
  if (fields.redirect) return { kind: 'skip', reason: 'redirect', page_id: fields.page_id };
  const text = raw[textField];
  if (typeof text !== 'string') return { kind: 'skip', reason: 'missing_text', page_id: fields.page_id };
  if (text.length === 0) return { kind: 'skip', reason: 'empty_text', page_id: fields.page_id };
  const { redirect: _redirect, ...doc } = fields;
  return { kind: 'doc', doc: { ...doc, text } };
}

/** Everything a shard row needs from a parsed document line except its text (huge texts are read apart). */
export function docFields(indexId: string | undefined, raw: Record<string, unknown>, fallbackWiki: string): Omit<ParsedDoc, 'text'> & { redirect: boolean } {
  const pageId = typeof raw.page_id === 'number' ? raw.page_id : indexId !== undefined && /^\d+$/.test(indexId) ? Number(indexId) : undefined;
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
