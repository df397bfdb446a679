/**
 * Decoding probe for our reader, in its own process. Usage: node-probe.ts FORMAT FILE
 * Prints one JSON line: uncompressed bytes, wallS and cpuS (all threads of this process) of the decode.
 */
import { timeAsync } from '../lib/measure.js';
import { loadOurDecoder } from './ours.js';

const [format, path] = process.argv.slice(2);
if ((format !== 'gzip' && format !== 'bzip2') || !path) throw new Error('usage: node-probe.ts gzip|bzip2 FILE');
const decoder = await loadOurDecoder(format);
if (!decoder) throw new Error(`no reader for ${format} yet`);
const { value: bytes, wallS, cpuS } = await timeAsync(() => decoder.decode(path));
console.log(JSON.stringify({ source: decoder.source, bytes, wallS, cpuS }));
