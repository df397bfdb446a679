// Manual entry points of the e2e harness (as root):
//   node --import tsx test/e2e/cli.ts cleanup          remove what killed runs left behind
//   node --import tsx test/e2e/cli.ts teardown RUN     remove one run, live or not (Cluster.close() runs it)
//   node --import tsx test/e2e/cli.ts rootfs           build (or show) the cached node root filesystem
//   node --import tsx test/e2e/cli.ts up [NODE...]     start nodes, print how to enter them, tear down on Ctrl-C
import { parseArgs } from 'node:util';
import { startCluster } from './cluster.js';
import { nodeRootfs } from './rootfs.js';
import { leftoverRuns, RUNC_ROOT, teardown } from './teardown.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { bundle: { type: 'string' } },
  });
  const [command, ...rest] = positionals;
  switch (command) {
    case 'cleanup': {
      const runs = leftoverRuns();
      if (runs.length === 0) log('e2e: nothing to clean up');
      teardown(undefined, log);
      return 0;
    }
    case 'teardown': {
      const [runId] = rest;
      if (!runId || !/^[0-9a-f]+$/.test(runId)) {
        log('usage: node --import tsx test/e2e/cli.ts teardown RUN_ID');
        return 2;
      }
      teardown(runId, log);
      return 0;
    }
    case 'rootfs': {
      const r = await nodeRootfs(log);
      log(`e2e: ${r.dir} (${r.cached ? 'cached' : `built in ${r.buildSeconds} s`})`);
      return 0;
    }
    case 'up': {
      const cluster = await startCluster({ nodes: rest.length ? rest : ['cp-1'], bundleDir: values.bundle, log });
      log(`e2e: run ${cluster.runId} up in ${cluster.timings.nodesStartSeconds} s; enter a node with:`);
      for (const n of cluster.nodes) log(`  runc --root ${RUNC_ROOT} exec -t ${n.containerId} bash`);
      log('e2e: Ctrl-C tears everything down');
      // Keeps the process (and so the nodes) alive until a signal ends it.
      setInterval(() => {}, 1 << 30);
      await new Promise(() => {});
      return 0;
    }
    default:
      log('usage: node --import tsx test/e2e/cli.ts cleanup | teardown RUN_ID | rootfs | up [--bundle DIR] [NODE...]');
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
