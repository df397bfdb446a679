import { once } from 'node:events';
import { closeSync, createWriteStream, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { runMeasured } from './measure.js';
import { benchCacheDir, realSamplePath } from './paths.js';

/** A file of article texts, one JSON string per line, shared by every tokenizer probe (JS and Python). */
export interface TextCorpus {
  path: string;
  docs: number;
  bytes: number;
  source: string;
}

interface SampleDoc {
  index: string;
  doc: Record<string, unknown>;
}

function readRealSample(): SampleDoc[] {
  if (!existsSync(realSamplePath)) {
    throw new Error(`real sample not found at ${realSamplePath}; the bench needs it until synth is available`);
  }
  const lines = gunzipSync(readFileSync(realSamplePath)).toString('utf8').split('\n').filter((l) => l.length > 0);
  const docs: SampleDoc[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    docs.push({ index: lines[i]!, doc: JSON.parse(lines[i + 1]!) as Record<string, unknown> });
  }
  return docs;
}

/**
 * Article texts of at least targetBytes (UTF-8), built from the real Wikibooks sample's `text` and
 * `source_text` fields repeated in order. Cached by size.
 */
export async function ensureTextCorpus(targetBytes: number): Promise<TextCorpus> {
  const path = join(benchCacheDir('inputs'), `texts-sample-${targetBytes}.jsonl`);
  const metaPath = `${path}.meta.json`;
  if (existsSync(path) && existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as TextCorpus;
  const texts: string[] = [];
  for (const { doc } of readRealSample()) {
    for (const field of ['text', 'source_text']) {
      const t = doc[field];
      if (typeof t === 'string' && t.length > 0) texts.push(t);
    }
  }
  const lines: string[] = [];
  let bytes = 0;
  let docs = 0;
  while (bytes < targetBytes) {
    for (const t of texts) {
      lines.push(JSON.stringify(t));
      bytes += Buffer.byteLength(t);
      docs++;
      if (bytes >= targetBytes) break;
    }
  }
  await writeFile(`${path}.tmp`, lines.join('\n') + '\n');
  await rename(`${path}.tmp`, path);
  const corpus: TextCorpus = { path, docs, bytes, source: 'real sample (simplewikibooks, text + source_text) repeated' };
  await writeFile(metaPath, JSON.stringify(corpus));
  return corpus;
}

/** A CirrusSearch-format dump (index line + doc line per page) in one compression format. */
export interface DumpFile {
  path: string;
  format: 'gzip' | 'bzip2';
  compressedBytes: number;
  uncompressedBytes: number;
  docs: number;
  source: string;
}

/** Write the sample's pages repeatedly (fresh page ids) until targetBytes; streamed, as 1 GB exceeds a JS string. */
async function writeRepeatedDump(path: string, targetBytes: number): Promise<void> {
  const sample = readRealSample();
  const out = createWriteStream(`${path}.tmp`);
  let bytes = 0;
  let docs = 0;
  while (bytes < targetBytes) {
    const lines: string[] = [];
    for (const { doc } of sample) {
      const pageId = ++docs;
      lines.push(`{"index":{"_id":"${pageId}"}}`, JSON.stringify({ ...doc, page_id: pageId }));
    }
    const chunk = lines.join('\n') + '\n';
    bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await finished(out);
  await rename(`${path}.tmp`, path);
}

function countDocs(path: string): number {
  // Two lines per doc; counted from the file so a cached file needs no side record.
  let newlines = 0;
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(1 << 20);
  for (let n; (n = readSync(fd, buf)) > 0; ) for (let i = 0; i < n; i++) if (buf[i] === 10) newlines++;
  closeSync(fd);
  return newlines / 2;
}

/**
 * A dump of at least targetBytes uncompressed: the real sample's pages repeated with fresh page ids.
 * gzip -6 matches Wikimedia's legacy files; bzip2 -9 (900k blocks) matches the current parts.
 */
export async function ensureDump(targetBytes: number, format: 'gzip' | 'bzip2'): Promise<DumpFile> {
  const dir = benchCacheDir('inputs');
  const plain = join(dir, `dump-sample-${targetBytes}.json`);
  const path = `${plain}.${format === 'gzip' ? 'gz' : 'bz2'}`;
  const metaPath = `${path}.meta.json`;
  if (existsSync(path) && existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as DumpFile;
  if (!existsSync(plain) || statSync(plain).size < targetBytes) await writeRepeatedDump(plain, targetBytes);
  const docs = countDocs(plain);
  const tool = format === 'gzip' ? ['gzip', '-6', '-c', plain] : ['bzip2', '-9', '-c', plain];
  await runMeasured(tool[0]!, tool.slice(1), { stdoutPath: `${path}.tmp` });
  await rename(`${path}.tmp`, path);
  const dump: DumpFile = {
    path,
    format,
    compressedBytes: statSync(path).size,
    uncompressedBytes: statSync(plain).size,
    docs,
    source: 'real sample (simplewikibooks) repeated with fresh page ids',
  };
  await writeFile(metaPath, JSON.stringify(dump));
  return dump;
}

/** The non-empty `field` texts of a gzip dump, as a text corpus: the tokenizer-only side of the pipeline ratio. */
export async function ensureTextsOfDump(dump: DumpFile, field = 'text'): Promise<TextCorpus> {
  const path = `${dump.path}.${field}.jsonl`;
  const metaPath = `${path}.meta.json`;
  if (existsSync(path) && existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as TextCorpus;
  if (dump.format !== 'gzip') throw new Error(`texts of a ${dump.format} dump are not supported`);
  const lines = gunzipSync(readFileSync(dump.path)).toString('utf8').split('\n');
  const out: string[] = [];
  let bytes = 0;
  for (let i = 1; i < lines.length; i += 2) {
    if (lines[i]!.length === 0) continue;
    const t = (JSON.parse(lines[i]!) as Record<string, unknown>)[field];
    if (typeof t === 'string' && t.length > 0) {
      out.push(JSON.stringify(t));
      bytes += Buffer.byteLength(t);
    }
  }
  await writeFile(`${path}.tmp`, out.join('\n') + '\n');
  await rename(`${path}.tmp`, path);
  const corpus: TextCorpus = { path, docs: out.length, bytes, source: `field '${field}' of ${dump.path}` };
  await writeFile(metaPath, JSON.stringify(corpus));
  return corpus;
}

/**
 * A gzip dump of the real sample's pages plus one page of pageBytes of text in the middle: the memory figure's input.
 */
export async function ensureBigPageDump(pageBytes: number): Promise<DumpFile & { largestPageBytes: number }> {
  const path = join(benchCacheDir('inputs'), `dump-bigpage-${pageBytes}.json.gz`);
  const metaPath = `${path}.meta.json`;
  if (existsSync(path) && existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as DumpFile & { largestPageBytes: number };
  const sample = readRealSample();
  const filler = sample.map((d) => d.doc['text']).filter((t): t is string => typeof t === 'string' && t.length > 0).join('\n');
  const chunks: string[] = [];
  let size = 0;
  while (size < pageBytes) {
    chunks.push(filler);
    size += Buffer.byteLength(filler) + 1;
  }
  const big = chunks.join('\n').slice(0, pageBytes);
  const lines: string[] = [];
  sample.forEach(({ doc }, i) => {
    const pageId = i + 1;
    lines.push(`{"index":{"_id":"${pageId}"}}`, JSON.stringify({ ...doc, page_id: pageId }));
    if (i === sample.length >> 1) {
      const id = sample.length + 1;
      lines.push(`{"index":{"_id":"${id}"}}`, JSON.stringify({ page_id: id, namespace: 0, title: 'Big page', text: big, version: 1, wiki: 'simplewikibooks' }));
    }
  });
  const plain = Buffer.from(lines.join('\n') + '\n');
  await writeFile(`${path}.tmp`, gzipSync(plain, { level: 6 }));
  await rename(`${path}.tmp`, path);
  const dump = {
    path,
    format: 'gzip' as const,
    compressedBytes: statSync(path).size,
    uncompressedBytes: plain.length,
    docs: sample.length + 1,
    source: `real sample plus one ${(pageBytes / 1e6).toFixed(0)} MB page`,
    largestPageBytes: Buffer.byteLength(big),
  };
  await writeFile(metaPath, JSON.stringify(dump));
  return dump;
}
