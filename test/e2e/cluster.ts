// Starts the nodes of a test cluster: each a runc system container (systemd as PID 1) on a writable overlay of
// the cached root filesystem, in its own network namespace on the run's bridge, with this checkout and the
// bundle bind-mounted read-only. Everything is torn down on stop(), on failure, on exit and on Ctrl-C.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../harness/paths.js';
import { run, waitFor } from '../harness/proc.js';
import { bridgeAddress, createClusterNetwork, createNodeNetwork, nodeAddress, PREFIX } from './network.js';
import { nodeCapabilities, nodeSpec, type BindMount } from './oci-spec.js';
import { nodeRootfs } from './rootfs.js';
import { CGROUP_PARENT, claimRun, runDir, RUNC_ROOT, saveHostSysctls, teardown, teardownOnExit } from './teardown.js';

/** Where a node sees this checkout, the bundle and the host's Node.js. */
export const NODE_REPO = '/opt/tokenize-wiki';
export const NODE_BUNDLE = '/opt/tokenize-wiki-bundle';
export const NODE_NODEJS = '/usr/local/bin/node';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ClusterNode {
  name: string;
  address: string;
  containerId: string;
  /** The node's console (systemd's output), on the host. */
  consoleLog: string;
  /** Runs a command inside the node (as root, in the node's namespaces); never throws on a non-zero exit. */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

export interface ExecOptions {
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
}

export interface Cluster {
  runId: string;
  dir: string;
  nodes: ClusterNode[];
  timings: Record<string, number>;
  /** Tears the run down now (synchronous: also fit for exit and signal handlers). */
  stop(): void;
  /**
   * The same teardown in a child process: removing gigabytes of node files blocks for a minute or more, which a
   * test runner's worker must not spend with its event loop stopped (vitest then fails its RPC with a timeout).
   */
  close(): Promise<void>;
}

export interface ClusterOptions {
  nodes: readonly string[];
  /** A bundle folder on the host, mounted read-only at NODE_BUNDLE. */
  bundleDir?: string;
  /**
   * By node name, a tmpfs of this size (e.g. `10g`) for the node's /var/lib/containerd instead of a folder on the
   * host disk: the kubelet then measures its image filesystem there, and a host disk just above the eviction
   * thresholds is not pushed below them by the ~5 GB the node's images take (test/e2e/resources.ts chooses).
   */
  containerdTmpfs?: Readonly<Record<string, string>>;
  log?: (line: string) => void;
}

function execIn(containerId: string) {
  return (argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> =>
    new Promise((resolve, reject) => {
      const env = Object.entries(opts.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
      const cwd = opts.cwd ? ['--cwd', opts.cwd] : [];
      const child = spawn('runc', ['--root', RUNC_ROOT, 'exec', ...env, ...cwd, containerId, ...argv], {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    });
}

function hostsFile(names: readonly string[]): string {
  const lines = ['127.0.0.1 localhost', '::1 localhost ip6-localhost ip6-loopback'];
  names.forEach((n, i) => lines.push(`${nodeAddress(i)} ${n}`));
  return `${lines.join('\n')}\n`;
}

/** Per-node files written into the overlay's upper layer before the node boots. */
function seedNode(upper: string, name: string, names: readonly string[]): void {
  mkdirSync(join(upper, 'etc'), { recursive: true });
  writeFileSync(join(upper, 'etc/hostname'), `${name}\n`);
  writeFileSync(join(upper, 'etc/hosts'), hostsFile(names));
  // Resolvers answer nothing inside the cluster namespace; the bridge address refuses at once (no DNS server
  // there), and it is not a loopback address, which CoreDNS would reject as a forwarding loop.
  writeFileSync(join(upper, 'etc/resolv.conf'), `nameserver ${bridgeAddress()}\n`);
  writeFileSync(join(upper, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`);
  // Its own SSH host keys, as a VM gets on its first boot: the root filesystem's, made once by debootstrap, would
  // give every node the same identity (join-worker --ssh checks the control plane's).
  mkdirSync(join(upper, 'etc/ssh'), { recursive: true });
  for (const type of ['rsa', 'ecdsa', 'ed25519'])
    execFileSync('ssh-keygen', [
      '-q',
      '-t',
      type,
      '-N',
      '',
      '-C',
      `root@${name}`,
      '-f',
      join(upper, `etc/ssh/ssh_host_${type}_key`),
    ]);
}

/** Runs one of the scripts in the node as a user runs it there: as root, from the checkout (or another clone). */
export async function nodeScript(
  node: ClusterNode,
  script: string,
  args: readonly string[],
  timeoutMs = 20 * 60_000,
  cwd = NODE_REPO,
): Promise<ExecResult> {
  return node.exec([NODE_NODEJS, '--import', 'tsx', `scripts/${script}.mts`, ...args], { cwd, timeoutMs });
}

/** Waits until systemd has booted; on failure the error names the failed units. */
export async function waitForSystemd(node: ClusterNode, timeoutMs: number): Promise<string> {
  let state = '';
  try {
    return await waitFor(`systemd in ${node.name} to finish booting`, timeoutMs, async () => {
      state = (await node.exec(['systemctl', 'is-system-running'])).stdout.trim();
      return state === 'running' || state === 'degraded' ? state : undefined;
    });
  } catch (err) {
    const failed = (await node.exec(['systemctl', '--failed', '--no-legend', '--plain'])).stdout.trim();
    const jobs = (await node.exec(['systemctl', 'list-jobs', '--no-legend'])).stdout.trim();
    const console = existsSync(node.consoleLog) ? readFileSync(node.consoleLog, 'utf8').slice(-3000) : '';
    throw new Error(
      `${(err as Error).message} (last state "${state}")\nfailed units:\n${failed || '(none)'}\npending jobs:\n${jobs || '(none)'}\nconsole:\n${console}`,
    );
  }
}

async function startNode(
  runId: string,
  dir: string,
  rootfs: string,
  names: readonly string[],
  index: number,
  binds: BindMount[],
  containerdTmpfs?: string,
): Promise<ClusterNode> {
  const name = names[index] ?? '';
  const nodeDir = join(dir, 'nodes', name);
  const [upper, work, merged, containerd] = ['upper', 'work', 'rootfs', 'containerd'].map((d) => join(nodeDir, d)) as [
    string,
    string,
    string,
    string,
  ];
  for (const d of [upper, work, merged, containerd]) mkdirSync(d, { recursive: true });
  seedNode(upper, name, names);
  await run('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${rootfs},upperdir=${upper},workdir=${work}`,
    merged,
  ]);
  // Unmounted by the teardown with every other mount below the run's folder.
  if (containerdTmpfs)
    await run('mount', ['-t', 'tmpfs', '-o', `size=${containerdTmpfs},mode=0711`, 'tmpfs', containerd]);
  const netnsPath = await createNodeNetwork(runId, name, index);
  const containerId = `${PREFIX}${runId}-${name}`;
  const spec = nodeSpec({
    hostname: name,
    rootfs: merged,
    netnsPath,
    cgroupsPath: `/${CGROUP_PARENT}/${containerId}`,
    capabilities: nodeCapabilities(readFileSync('/proc/self/status', 'utf8')),
    // containerd's snapshots are overlay mounts themselves: their folder must not be on the node's overlay.
    binds: [{ source: containerd, destination: '/var/lib/containerd' }, ...binds],
  });
  writeFileSync(join(nodeDir, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
  const consoleLog = join(nodeDir, 'console.log');
  const fd = openSync(consoleLog, 'a');
  try {
    // Detached: runc returns once PID 1 runs; the node's console stays attached to the log file.
    await new Promise<void>((resolve, reject) => {
      const child = spawn('runc', ['--root', RUNC_ROOT, 'run', '--detach', '--bundle', nodeDir, containerId], {
        stdio: ['ignore', fd, fd],
      });
      child.once('error', reject);
      child.once('close', (code) =>
        code === 0
          ? resolve()
          : reject(
              new Error(
                `runc run ${containerId} exited with ${code}:\n${readFileSync(consoleLog, 'utf8').slice(-2000)}`,
              ),
            ),
      );
    });
  } finally {
    closeSync(fd);
  }
  return { name, address: nodeAddress(index), containerId, consoleLog, exec: execIn(containerId) };
}

/** The read-only mounts every node gets: the checkout, the host's Node.js, and the bundle if there is one. */
function sharedBinds(bundleDir: string | undefined): BindMount[] {
  const binds: BindMount[] = [
    { source: repoRoot.replace(/\/$/, ''), destination: NODE_REPO, readonly: true },
    { source: realpathSync(process.execPath), destination: NODE_NODEJS, readonly: true },
  ];
  if (bundleDir) binds.push({ source: bundleDir, destination: NODE_BUNDLE, readonly: true });
  // Nodes load no modules of their own; the host's modules folder is shown when the host has one.
  if (existsSync('/lib/modules')) binds.push({ source: '/lib/modules', destination: '/lib/modules', readonly: true });
  return binds;
}

/** Starts the nodes and waits until systemd runs in each. Tears everything down if any step fails. */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const log = opts.log ?? (() => {});
  const timings: Record<string, number> = {};
  const rootfs = await nodeRootfs(log);
  timings.rootfsBuildSeconds = rootfs.cached ? 0 : rootfs.buildSeconds;
  const runId = randomUUID().replaceAll('-', '').slice(0, 8);
  const dir = runDir(runId);
  mkdirSync(dir, { recursive: true });
  claimRun(runId);
  saveHostSysctls(runId);
  const forget = teardownOnExit(runId);
  const stop = (): void => {
    teardown(runId, log);
    forget();
  };
  const close = async (): Promise<void> => {
    await run(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/e2e/cli.ts'), 'teardown', runId], {
      cwd: repoRoot,
    });
    log(`e2e: run ${runId} torn down`);
    forget();
  };
  try {
    mkdirSync(RUNC_ROOT, { recursive: true });
    const t0 = Date.now();
    await createClusterNetwork(runId);
    const nodes: ClusterNode[] = [];
    for (let i = 0; i < opts.nodes.length; i++) {
      nodes.push(
        await startNode(
          runId,
          dir,
          rootfs.dir,
          opts.nodes,
          i,
          sharedBinds(opts.bundleDir),
          opts.containerdTmpfs?.[opts.nodes[i] ?? ''],
        ),
      );
    }
    for (const node of nodes) {
      const state = await waitForSystemd(node, 180_000);
      log(`e2e: ${node.name} (${node.address}) booted, systemd ${state}`);
    }
    timings.nodesStartSeconds = Math.round((Date.now() - t0) / 100) / 10;
    return { runId, dir, nodes, timings, stop, close };
  } catch (err) {
    stop();
    throw err;
  }
}
