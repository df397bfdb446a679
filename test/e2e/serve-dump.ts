// Serves a folder as dump mirrors do (Range requests, autoindex pages), on an address inside the cluster's
// network namespace: started there with `ip netns exec`, ended by the teardown with the namespace's processes.
//   node --import tsx test/e2e/serve-dump.ts ROOT HOST PORT
import { DumpServer } from '../stage/dump-server.js';

const [root, host, port] = process.argv.slice(2);
if (!root || !host || !port) {
  process.stderr.write('usage: node --import tsx test/e2e/serve-dump.ts ROOT HOST PORT\n');
  process.exit(2);
}
const server = await DumpServer.start(root, 1024 * 1024, host, Number(port));
process.stderr.write(`serving ${root} on ${server.origin}\n`);
