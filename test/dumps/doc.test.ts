import { describe, expect, it } from 'vitest';
import { BadDocError, indexLineId, parseDoc } from '../../src/dumps/doc.js';

describe('indexLineId', () => {
  it('reads _id from both index-line forms', () => {
    expect(indexLineId('{"index":{"_id":"1"}}')).toBe('1');
    expect(indexLineId('{"index":{"_type":"page","_id":"42"}}')).toBe('42');
    expect(indexLineId('{"index":{"_id":7}}')).toBe('7');
  });

  it('returns undefined for an index line without _id', () => {
    expect(indexLineId('{"index":{}}')).toBeUndefined();
    expect(indexLineId('{"index":{"_type":"page"}}')).toBeUndefined();
  });

  it('throws BadDocError for a line that is not an index line', () => {
    expect(() => indexLineId('{"page_id":1}')).toThrow(BadDocError);
    expect(() => indexLineId('{"index":')).toThrow(/malformed JSON/);
    expect(() => indexLineId('null')).toThrow(BadDocError);
  });
});

describe('parseDoc', () => {
  const doc = (fields: Record<string, unknown>): string =>
    JSON.stringify({
      page_id: 12,
      title: 'Zürich',
      namespace: 4,
      wiki: 'dewiki',
      version: 99,
      text: 'Hallo Welt',
      ...fields,
    });

  it('takes page_id, title, namespace, wiki, version→revision and the text field', () => {
    expect(parseDoc('12', doc({}), 'text', 'fallback')).toEqual({
      kind: 'doc',
      doc: { page_id: 12, title: 'Zürich', namespace: 4, wiki: 'dewiki', revision: 99, text: 'Hallo Welt' },
    });
  });

  it('tokenizes the field named by --text-field', () => {
    const outcome = parseDoc('12', doc({ source_text: "'''Hallo''' Welt" }), 'source_text', 'w');
    expect(outcome.kind === 'doc' && outcome.doc.text).toBe("'''Hallo''' Welt");
  });

  it('takes page_id from the index line _id when the document has none', () => {
    const outcome = parseDoc('314', doc({ page_id: undefined }), 'text', 'w');
    expect(outcome.kind === 'doc' && outcome.doc.page_id).toBe(314);
  });

  it('prefers the document page_id over the index line', () => {
    const outcome = parseDoc('314', doc({}), 'text', 'w');
    expect(outcome.kind === 'doc' && outcome.doc.page_id).toBe(12);
  });

  it('fails clearly when neither the document nor the index line has a page id', () => {
    expect(() => parseDoc(undefined, doc({ page_id: undefined }), 'text', 'w')).toThrow(BadDocError);
    expect(() => parseDoc('abc', doc({ page_id: undefined }), 'text', 'w')).toThrow(
      /no page_id and its index line has no numeric _id/,
    );
  });

  it('skips redirects, missing text and empty text, each with its reason and page id', () => {
    expect(parseDoc('12', doc({ page_type: 'redirect' }), 'text', 'w')).toEqual({
      kind: 'skip',
      reason: 'redirect',
      page_id: 12,
    });
    expect(parseDoc('12', doc({ text: undefined }), 'text', 'w')).toEqual({
      kind: 'skip',
      reason: 'missing_text',
      page_id: 12,
    });
    expect(parseDoc('12', doc({ text: null }), 'text', 'w')).toEqual({
      kind: 'skip',
      reason: 'missing_text',
      page_id: 12,
    });
    expect(parseDoc('12', doc({}), 'source_text', 'w')).toEqual({ kind: 'skip', reason: 'missing_text', page_id: 12 });
    expect(parseDoc('12', doc({ text: '' }), 'text', 'w')).toEqual({ kind: 'skip', reason: 'empty_text', page_id: 12 });
    // A primary page is not a redirect.
    expect(parseDoc('12', doc({ page_type: 'primary' }), 'text', 'w').kind).toBe('doc');
  });

  it('uses defaults for missing optional fields (wiki from the dump)', () => {
    expect(parseDoc('5', JSON.stringify({ text: 'x' }), 'text', 'simplewiki')).toEqual({
      kind: 'doc',
      doc: { page_id: 5, title: '', namespace: 0, wiki: 'simplewiki', revision: null, text: 'x' },
    });
  });

  it('rejects malformed JSON and non-object documents with BadDocError', () => {
    expect(() => parseDoc('1', '{"page_id":1,"text":"a"', 'text', 'w')).toThrow(/malformed JSON document/);
    expect(() => parseDoc('1', '[1,2]', 'text', 'w')).toThrow(/not a JSON object/);
    expect(() => parseDoc('1', 'null', 'text', 'w')).toThrow(BadDocError);
  });
});
