import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../lib/paths.js';

export interface OurDecoder {
  /** Decode the whole file and return the number of uncompressed bytes. */
  decode: (path: string) => Promise<number>;
  source: string;
}

type Decoder = (source: AsyncIterable<Uint8Array>, what: string) => AsyncIterable<Uint8Array>;

interface DecodeModule {
  decoderFor: (compression: 'gzip' | 'bzip2') => Decoder;
}

/** Our reader's decompression path (src/dumps decoderFor), or null while it is not in the tree. */
export async function loadOurDecoder(format: 'gzip' | 'bzip2'): Promise<OurDecoder | null> {
  const modPath = join(repoRoot, 'src', 'dumps', 'decode.ts');
  if (!existsSync(modPath)) return null;
  const mod = (await import(pathToFileURL(modPath).href)) as Partial<DecodeModule>;
  if (typeof mod.decoderFor !== 'function') return null;
  const decoder = mod.decoderFor(format);
  return {
    source: `src/dumps decoderFor('${format}')`,
    decode: async (path) => {
      let n = 0;
      for await (const chunk of decoder(createReadStream(path, { highWaterMark: 1 << 20 }), path)) n += chunk.byteLength;
      return n;
    },
  };
}
