/**
 * Decoding probe for our reader, in its own process: `node-probe.ts MANIFEST_URI`, for a manifest whose one task
 * covers the whole dump. It reads that task exactly as run-tasks does (openTaskStream: ranged read from the task's
 * access point, then our decoder) and prints one JSON line with the uncompressed bytes, and the wall and CPU time
 * of the decode (all threads plus child processes, since our bzip2 path pipes through `bzip2` children).
 */
import { fastestBzip2Decoder } from '../../src/dumps/index.js';
import { manifestFolderOf, readManifest } from '../../src/manifest/index.js';
import { openTaskStream } from '../../src/tasks/open.js';
import { timeAsync } from '../lib/measure.js';

const [manifestUri] = process.argv.slice(2);
if (!manifestUri) throw new Error('usage: node-probe.ts MANIFEST_URI');
const manifest = await readManifest(manifestUri);
const [task, ...more] = manifest.tasks;
const dump = manifest.dumps[0];
if (!task || !dump || more.length > 0) throw new Error(`${manifestUri}: expected exactly one task covering the dump`);
const {
  value: bytes,
  wallS,
  cpuS,
} = await timeAsync(async () => {
  const { decoded } = await openTaskStream(task, dump, manifestFolderOf(manifestUri));
  let n = 0;
  for await (const chunk of decoded) n += chunk.byteLength;
  return n;
});
if (bytes < dump.uncompressed_bytes)
  throw new Error(`${dump.uri}: decoded ${bytes} bytes, the manifest says ${dump.uncompressed_bytes}`);
const bzip2 = fastestBzip2Decoder();
const decoder =
  task.access.kind === 'bzip2' ? `: realigned blocks through ${bzip2.command} ${bzip2.args.join(' ')}` : '';
console.log(JSON.stringify({ source: `openTaskStream (${task.access.kind} access${decoder})`, bytes, wallS, cpuS }));
