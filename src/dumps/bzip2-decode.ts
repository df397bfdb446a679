// Decoding bzip2 with the `bzip2` (or `lbzip2`) CLI in a child process: the fastest decoder available here
// (figures in docs/performance.md).
import { spawn, spawnSync } from 'node:child_process';
import { Bzip2DataError } from './bzip2-scan.js';

const STDERR_LIMIT = 4096;

/** A bzip2 decoder program: `bzip2 -dc`, or `lbzip2 -dc -n1` (same format, faster, larger writes). */
export interface Bzip2Decoder {
  command: 'bzip2' | 'lbzip2';
  args: string[];
}

const BZIP2: Bzip2Decoder = { command: 'bzip2', args: ['-dc'] };
const LBZIP2: Bzip2Decoder = { command: 'lbzip2', args: ['-dc', '-n1'] };
let fastest: Bzip2Decoder | undefined;

/**
 * For reading tasks: lbzip2 with one thread when it is installed (it decodes faster than bzip2 and writes in large
 * chunks, which cost the reading process less than bzip2's 5 KB writes; docs/performance.md), else bzip2. The manifest pass
 * keeps bzip2: its handling of false block magics depends on bzip2's exact failures.
 */
export function fastestBzip2Decoder(): Bzip2Decoder {
  fastest ??= spawnSync(LBZIP2.command, ['--version'], { stdio: 'ignore' }).status === 0 ? LBZIP2 : BZIP2;
  return fastest;
}

/**
 * Decompress a .bz2 byte stream (one or more concatenated streams) with `bzip2 -dc` (or another decoder).
 * Output follows the consumer's pace; stopping early kills the child. A non-zero exit throws Bzip2DataError
 * carrying the decoder's message.
 */
export async function* decodeBzip2(
  stream: AsyncIterable<Uint8Array>,
  decoder: Bzip2Decoder = BZIP2,
): AsyncGenerator<Buffer, void, undefined> {
  const name = `${decoder.command} ${decoder.args.join(' ')}`;
  const child = spawn(decoder.command, decoder.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  // bzip2 exits on bad data while we may still be writing: EPIPE here is reported through the exit status.
  child.stdin.on('error', () => {});
  let stop = false;
  let inputError: { error: unknown } | undefined; // boxed: the input may throw anything, even undefined
  const writer = (async () => {
    try {
      for await (const buf of stream) {
        if (stop || child.stdin.destroyed) break;
        if (!child.stdin.write(buf)) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              child.stdin.off('drain', done);
              child.stdin.off('close', done);
              resolve();
            };
            child.stdin.on('drain', done);
            child.stdin.on('close', done);
          });
        }
      }
    } catch (err) {
      inputError = { error: err };
      child.kill('SIGKILL');
    } finally {
      child.stdin.end();
    }
  })();
  let finished = false;
  try {
    for await (const out of child.stdout) yield out as Buffer;
    finished = true;
  } finally {
    if (!finished) {
      stop = true;
      child.kill('SIGKILL');
    }
  }
  await writer;
  const { code, signal, error } = await exited;
  if (inputError) throw inputError.error;
  if (error) throw new Error(`cannot run ${name} (is the ${decoder.command} package installed?): ${error.message}`);
  if (code !== 0) {
    const detail = stderr.trim().replace(/\s+/g, ' ') || (signal ? `killed by ${signal}` : 'no message');
    throw new Bzip2DataError(`${name} failed (exit ${code ?? signal}): ${detail}`);
  }
}
