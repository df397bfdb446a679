import { describe, expect, it } from 'vitest';
import { parseSha256, parseSha256List } from '../../src/stage/index.js';

const A = 'a'.repeat(64);
const B = 'B'.repeat(64);

describe('sha256 lists and values', () => {
  it('reads sha256sum output: text and binary mode, comments, paths reduced to file names, hex lower-cased', () => {
    const list = parseSha256List(
      `# enwiki parts\n${A}  enwiki_content-20261122-00000.json.bz2\n\n${B} *some/dir/enwiki_content-20261122-00001.json.bz2\r\n`,
      'SUMS',
    );
    expect([...list]).toEqual([
      ['enwiki_content-20261122-00000.json.bz2', A],
      ['enwiki_content-20261122-00001.json.bz2', B.toLowerCase()],
    ]);
  });

  it('names the file and line of a bad entry, and of a name listed twice with different sums', () => {
    expect(() => parseSha256List(`${A}  x.json.bz2\nnot a checksum line\n`, 'SUMS')).toThrow(
      /^SUMS:2: expected "HEX {2}name"/,
    );
    expect(() => parseSha256List(`${A}  x.json.bz2\n${B}  x.json.bz2\n`, 'SUMS')).toThrow(
      /^SUMS:2: x\.json\.bz2 is listed twice/,
    );
    expect(parseSha256List(`${A}  x.json.bz2\n${A}  x.json.bz2\n`, 'SUMS').size).toBe(1);
  });

  it('accepts 64 hex digits only', () => {
    expect(parseSha256(B)).toBe(B.toLowerCase());
    expect(() => parseSha256('abc')).toThrow(/--sha256: expected 64 hex digits/);
    expect(() => parseSha256(`${A}0`)).toThrow(/64 hex digits/);
  });
});
