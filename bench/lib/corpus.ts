import { createReadStream, createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
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
  const sample = readRealSample();
  const out: string[] = [];
  let bytes = 0;
  let docs = 0;
  while (bytes < targetBytes) {
    for (const { doc } of sample) {
      const pageId = docs + 1;
      const idx = `{"index":{"_id":"${pageId}"}}`;
      const body = JSON.stringify({ ...doc, page_id: pageId });
      out.push(idx, body);
      bytes += Buffer.byteLength(idx) + Buffer.byteLength(body) + 2;
      docs++;
      if (bytes >= targetBytes) break;
    }
  }
  await writeFile(plain, out.join('\n') + '\n');
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

/** Copy helper used when a probe needs its own file (kept tiny: streams, never buffers). */
export async function copyFile(from: string, to: string): Promise<void> {
  await pipeline(createReadStream(from), createWriteStream(to));
}
