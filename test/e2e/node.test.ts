// Nodes of the real-cluster harness: each boots systemd, sits in the run's network namespace with no way out,
// sees this checkout, and leaves nothing behind: after stop(), after Ctrl-C and after being killed.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../harness/proc.js';
import { NODE_NODEJS, NODE_REPO, startCluster, type Cluster } from './cluster.js';
import { bridgeAddress, clusterNetns, nodeAddress, PREFIX } from './network.js';
import { nodeCapabilities } from './oci-spec.js';
import { HOST_SYSCTLS, mountsBelow, runDir, RUNC_ROOT } from './teardown.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function leftovers(runId: string): Promise<string[]> {
  const found: string[] = [];
  const netns = (await run('ip', ['netns', 'list'])).split('\n').filter((l) => l.startsWith(`${PREFIX}${runId}`));
  found.push(...netns.map((n) => `netns ${n}`));
  if (existsSync(RUNC_ROOT)) {
    const containers = (await run('runc', ['--root', RUNC_ROOT, 'list', '-q']))
      .split('\n')
      .filter((c) => c.includes(runId));
    found.push(...containers.map((c) => `container ${c}`));
  }
  found.push(...mountsBelow(readFileSync('/proc/self/mountinfo', 'utf8'), runDir(runId)).map((m) => `mount ${m}`));
  if (existsSync(runDir(runId))) found.push(`folder ${runDir(runId)}`);
  return found;
}

const hostSysctls = (): string[] => HOST_SYSCTLS.map((k) => readFileSync(`/proc/sys/${k}`, 'utf8').trim());
const sysctlsBefore = hostSysctls();

describe('an e2e node', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ nodes: ['cp-1', 'worker-1'], log });
    log(`e2e: timings ${JSON.stringify(cluster.timings)}`);
  });

  afterAll(async () => {
    if (!cluster) return;
    cluster.stop();
    expect(await leftovers(cluster.runId)).toEqual([]);
    expect(hostSysctls()).toEqual(sysctlsBefore);
  });

  it('boots systemd to running with no failed unit', async () => {
    const node = cluster.nodes[0]!;
    expect((await node.exec(['systemctl', 'is-system-running'])).stdout.trim()).toBe('running');
    expect((await node.exec(['systemctl', '--failed', '--no-legend'])).stdout.trim()).toBe('');
    expect((await node.exec(['hostname'])).stdout.trim()).toBe('cp-1');
    expect((await node.exec(['cat', '/etc/machine-id'])).stdout.trim()).toMatch(/^[0-9a-f]{32}$/);
  });

  it('has its address on the bridge and no route out of the cluster namespace', async () => {
    const node = cluster.nodes[0]!;
    expect((await node.exec(['ip', '-4', '-brief', 'addr', 'show', 'eth0'])).stdout).toContain(`${nodeAddress(0)}/24`);
    expect((await node.exec(['ip', 'route', 'show', 'default'])).stdout).toContain(`via ${bridgeAddress()}`);
    // The bridge's namespace holds only the bridge and the nodes' veths, and routes nowhere else.
    const ns = clusterNetns(cluster.runId);
    expect((await run('ip', ['-n', ns, 'route', 'show', 'default'])).trim()).toBe('');
    expect(
      (await run('ip', ['-n', ns, '-brief', 'link']))
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/[\s@]/)[0]),
    ).toEqual(['lo', 'br0', 'v-cp-1', 'v-worker-1']);
    expect((await run('ip', ['netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/ip_forward'])).trim()).toBe('0');
  });

  it('reaches the other node over the bridge by name (its sshd, for join-worker --ssh)', async () => {
    const [cp, worker] = cluster.nodes;
    expect(worker?.address).toBe(nodeAddress(1));
    const r = await cp!.exec(['bash', '-c', 'exec 3<>/dev/tcp/worker-1/22 && head -c 7 <&3'], { timeoutMs: 10_000 });
    expect(r.stdout).toBe('SSH-2.0');
    expect((await worker!.exec(['cat', '/etc/machine-id'])).stdout).not.toBe(
      (await cp!.exec(['cat', '/etc/machine-id'])).stdout,
    );
  });

  it("puts back the host's kernel settings that a node's kubelet changes", async () => {
    const node = cluster.nodes[0]!;
    // As kubelet does at start: the write goes through to the host (these settings have no namespace).
    expect((await node.exec(['sysctl', '-w', 'vm.overcommit_memory=1'])).code).toBe(0);
    expect(readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim()).toBe('1');
  });

  it('sees this checkout and the host Node.js, and keeps containerd state off the overlay', async () => {
    const node = cluster.nodes[0]!;
    expect((await node.exec([NODE_NODEJS, '--version'])).stdout.trim()).toBe(process.version);
    expect((await node.exec(['test', '-f', `${NODE_REPO}/scripts/bootstrap-node.mts`])).code).toBe(0);
    expect((await node.exec(['stat', '-fc', '%T', '/var/lib/containerd'])).stdout.trim()).not.toBe('overlayfs');
    expect((await node.exec(['stat', '-fc', '%T', '/'])).stdout.trim()).toBe('overlayfs');
    // The harness never grants CAP_SYS_RESOURCE (the host's set lacks it).
    expect(nodeCapabilities(readFileSync('/proc/self/status', 'utf8'))).not.toContain('CAP_SYS_RESOURCE');
  });
});

describe('cleanup of an interrupted run', () => {
  /** Starts `cli.ts up` in a child process; resolves with its run id once the node runs. */
  function up(): Promise<{ child: ReturnType<typeof spawn>; runId: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/e2e/cli.ts', 'up', 'tmp-1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    return new Promise((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString('utf8');
        const id = /run ([0-9a-f]{8}) up in/.exec(err)?.[1];
        if (id) resolve({ child, runId: id });
      });
      child.once('close', (code) => reject(new Error(`cli.ts up exited with ${code}:\n${err}`)));
    });
  }

  const exited = (child: ReturnType<typeof spawn>): Promise<void> =>
    new Promise((resolve) =>
      child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('close', () => resolve()),
    );

  it('tears down on Ctrl-C (SIGINT)', async () => {
    const { child, runId } = await up();
    child.kill('SIGINT');
    await exited(child);
    expect(await leftovers(runId)).toEqual([]);
  });

  it('leaves a killed run to the cleanup entry, which removes all of it', async () => {
    const { child, runId } = await up();
    child.kill('SIGKILL');
    await exited(child);
    expect((await leftovers(runId)).length).toBeGreaterThan(0);
    await run(process.execPath, ['--import', 'tsx', 'test/e2e/cli.ts', 'cleanup']);
    expect(await leftovers(runId)).toEqual([]);
  });
});
