/**
 * Decoding probe for our reader, in its own process: `node-probe.ts FORMAT FILE` decodes FILE and prints one JSON
 * line with the uncompressed bytes, wall time and CPU time of the decode (all threads plus child processes: our
 * bzip2 path pipes through one), so Node's start-up is not charged to decoding.
 */
import { timeAsync } from '../lib/measure.js';
import { loadOurDecoder } from './ours.js';

const [format, path] = process.argv.slice(2);
if ((format !== 'gzip' && format !== 'bzip2') || !path) throw new Error('usage: node-probe.ts gzip|bzip2 FILE');
const decoder = await loadOurDecoder(format);
if (!decoder) throw new Error(`no reader for ${format} yet`);
const { value: bytes, wallS, cpuS } = await timeAsync(() => decoder.decode(path));
console.log(JSON.stringify({ source: decoder.source, bytes, wallS, cpuS }));
