// Three nodes, as a user brings up three VMs (`npm run e2e -- --nodes 3`; the default one-node mode says it did
// not run): bootstrap-node --bundle on each, init-control-plane --cluster dev-3 on cp-1, join-worker --ssh on the two
// workers (an admin user whose key cp-1 authorises, each node with its own SSH host keys), Flannel's VXLAN between
// them, then Argo CD syncing clusters/dev-3 and a run spread over the workers, with a worker drained mid-run.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/proc.js';
import { readNodeBundle } from '../../scripts/lib/bundle/node-bundle.js';
import { bundleDir, bundleProblem, imagesMissing } from './bundle.js';
import {
  NODE_BUNDLE,
  NODE_NODEJS,
  NODE_REPO,
  nodeScript,
  startCluster,
  type Cluster,
  type ClusterNode,
} from './cluster.js';
import { NODE_CLONE, serveCheckout, serveDump, type GitServer } from './gitops.js';
import { DEV_APPLICATIONS, devRun, operator } from './operator.js';
import { chooseContainerdTmpfs, diskPressureReason, evictionPercent, hostRoom } from './resources.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const CLUSTER = 'dev-3';
const NAMES = ['cp-1', 'worker-1', 'worker-2'] as const;
/** The user who logs in to each VM and may sudo without a password (a cloud image's default user). */
const ADMIN = 'admin';

const threeNodes = process.env.TW_E2E_NODES === '3';
if (!threeNodes) log('e2e: three-node suite NOT RUN: one-node mode (`npm run e2e -- --nodes 3` runs it)');
function bundleMissing(): string | undefined {
  const problem = bundleProblem();
  if (problem) return problem;
  const images = imagesMissing(CLUSTER);
  return images.length ? `the bundle lacks ${images.join(', ')}` : undefined;
}
const missing = threeNodes ? bundleMissing() : undefined;
if (missing) log(`e2e: three-node suite NOT RUN: ${missing}`);
const containerdTmpfs =
  threeNodes && !missing ? chooseContainerdTmpfs(NAMES, evictionPercent(CLUSTER, 'imagefs.available'), log) : {};
const diskPressure =
  threeNodes && !missing
    ? diskPressureReason(
        CLUSTER,
        NAMES.every((n) => containerdTmpfs[n] !== undefined),
      )
    : undefined;
if (diskPressure) log(`e2e: three-node suite NOT RUN: ${diskPressure} (the nodes would be tainted disk-pressure)`);

describe.skipIf(!threeNodes || missing !== undefined || diskPressure !== undefined)(
  'three nodes from the bundle: a control plane and two workers joined over SSH',
  () => {
    let cluster: Cluster;
    let cp: ClusterNode;
    let workers: ClusterNode[];
    const timings: Record<string, number> = {};
    const seconds = (t0: number): number => Math.round((Date.now() - t0) / 100) / 10;

    beforeAll(async () => {
      cluster = await startCluster({ nodes: NAMES, bundleDir, log, containerdTmpfs });
      [cp, ...workers] = cluster.nodes as [ClusterNode, ...ClusterNode[]];
    });

    // What the nodes take of the host, after each step.
    afterEach((ctx) => {
      const room = hostRoom();
      const gib = (b: number): string => (b / 2 ** 30).toFixed(1);
      log(
        `e2e: after "${ctx.task.name}": host disk ${gib(room.diskFree)} GiB free, ${gib(room.memoryAvailable)} GiB RAM available`,
      );
    });

    afterAll(async () => {
      log(`e2e: timings ${JSON.stringify({ ...cluster?.timings, ...timings })}`);
      await cluster?.close();
    });

    const op = operator(
      () => cluster,
      () => cp,
      log,
    );
    const kubectl = op.kubectl;

    /** Writes a manifest into cp-1's /root (its overlay is visible on the host) and creates it there. */
    async function create(name: string, manifest: object): Promise<void> {
      writeFileSync(join(cluster.dir, 'nodes', cp.name, 'rootfs', 'root', `${name}.json`), JSON.stringify(manifest));
      const r = await kubectl('create', '-f', `/root/${name}.json`);
      expect(r.code, r.stderr).toBe(0);
    }

    it('bootstrap-node --bundle prepares all three nodes at once, each for its role', async () => {
      const t0 = Date.now();
      const results = await Promise.all(
        cluster.nodes.map(async (node, i) => {
          const t = Date.now();
          const role = i === 0 ? 'control-plane' : 'worker';
          const r = await nodeScript(node, 'bootstrap-node', [
            '--role',
            role,
            '--bundle',
            NODE_BUNDLE,
            '--allow-cgroup-v1',
          ]);
          timings[`bootstrap_${node.name}_Seconds`] = seconds(t);
          if (r.code !== 0) log(`e2e: bootstrap-node on ${node.name} exited ${r.code}:\n${r.stderr.slice(-4000)}`);
          return r.code;
        }),
      );
      timings.bootstrapAllSeconds = seconds(t0);
      expect(results).toEqual([0, 0, 0]);
      for (const node of cluster.nodes)
        log(
          `e2e: ${node.name} containerd holds ${(await node.exec(['du', '-sh', '/var/lib/containerd'])).stdout.trim()}`,
        );
    });

    let initStarted = 0;

    it('init-control-plane --cluster dev-3 on cp-1 keeps the control plane tainted', async () => {
      const t0 = Date.now();
      initStarted = t0;
      const r = await nodeScript(cp, 'init-control-plane', ['--cluster', CLUSTER, '--allow-cgroup-v1', '--offline']);
      timings.initControlPlaneSeconds = seconds(t0);
      if (r.code !== 0) log(`e2e: init-control-plane exited ${r.code}:\n${r.stderr.slice(-6000)}`);
      expect(r.code).toBe(0);
      const taints = await kubectl('get', 'node', 'cp-1', '-o', 'jsonpath={.spec.taints[*].key}');
      expect(taints.stdout).toContain('node-role.kubernetes.io/control-plane');
    });

    /** A shell command as the admin user, in a login of theirs. */
    const asAdmin = (node: ClusterNode, command: string) =>
      node.exec(['runuser', '-u', ADMIN, '--', 'bash', '-c', command]);

    it('join-worker --ssh admin@cp-1 joins both workers with the join command read over SSH', async () => {
      // Each VM's admin user, with passwordless sudo; each worker's admin has a key that cp-1's admin authorises.
      const adminSetup = [
        `useradd --create-home --shell /bin/bash --groups sudo ${ADMIN}`,
        `echo '${ADMIN} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/${ADMIN}`,
        `chmod 0440 /etc/sudoers.d/${ADMIN}`,
      ].join(' && ');
      for (const node of cluster.nodes) expect((await node.exec(['bash', '-c', adminSetup])).code).toBe(0);
      const keys: string[] = [];
      for (const w of workers) {
        const keygen = await asAdmin(
          w,
          `ssh-keygen -q -t ed25519 -N '' -C ${ADMIN}@${w.name} -f ~/.ssh/id_ed25519 && cat ~/.ssh/id_ed25519.pub`,
        );
        expect(keygen.code, keygen.stderr).toBe(0);
        keys.push(keygen.stdout.trim());
      }
      const authorise = await asAdmin(
        cp,
        `mkdir -p -m 0700 ~/.ssh && printf '%s\\n' ${keys.map((k) => `'${k}'`).join(' ')} >> ~/.ssh/authorized_keys && chmod 0600 ~/.ssh/authorized_keys`,
      );
      expect(authorise.code, authorise.stderr).toBe(0);
      // As the user runs it: logged in as admin, through sudo (join-worker then runs ssh as $SUDO_USER).
      const t0 = Date.now();
      const joined = await Promise.all(
        workers.map(async (w) => {
          const t = Date.now();
          const r = await w.exec(
            [
              'runuser',
              '-u',
              ADMIN,
              '--',
              'sudo',
              '-n',
              NODE_NODEJS,
              '--import',
              'tsx',
              'scripts/join-worker.mts',
              '--ssh',
              `${ADMIN}@cp-1`,
              '--allow-cgroup-v1',
            ],
            { cwd: NODE_REPO, timeoutMs: 10 * 60_000 },
          );
          timings[`join_${w.name}_Seconds`] = seconds(t);
          if (r.code !== 0) log(`e2e: join-worker on ${w.name} exited ${r.code}:\n${r.stderr.slice(-4000)}`);
          return r.code;
        }),
      );
      timings.joinBothSeconds = seconds(t0);
      expect(joined).toEqual([0, 0]);
      // Each node has its own host keys, and the workers learned cp-1's (accept-new) from that first contact.
      const hostKeys = await Promise.all(
        cluster.nodes.map(
          async (n) => (await n.exec(['cat', '/etc/ssh/ssh_host_ed25519_key.pub'])).stdout.split(' ')[1],
        ),
      );
      expect(new Set(hostKeys).size).toBe(3);
      for (const w of workers) {
        const known = await w.exec(['runuser', '-u', ADMIN, '--', 'ssh-keygen', '-F', 'cp-1']);
        expect(known.stdout).toContain(hostKeys[0]);
      }
    });

    it('all three nodes Ready, each with a flannel.1 VXLAN device', async () => {
      const t0 = Date.now();
      const ready = await kubectl('wait', '--for=condition=Ready', 'node', '--all', '--timeout=300s');
      timings.nodesReadyAfterJoinSeconds = seconds(t0);
      if (ready.code !== 0) log(`e2e: nodes:\n${(await kubectl('describe', 'nodes')).stdout.slice(-5000)}`);
      expect(ready.code).toBe(0);
      const names = (await kubectl('get', 'nodes', '-o', 'jsonpath={.items[*].metadata.name}')).stdout
        .trim()
        .split(' ');
      expect(names.sort()).toEqual([...NAMES]);
      for (const node of cluster.nodes) {
        const vxlan = await waitFor(`flannel.1 on ${node.name}`, 120_000, async () => {
          const r = await node.exec(['ip', '-details', 'link', 'show', 'flannel.1']);
          return r.code === 0 ? r.stdout : undefined;
        });
        expect(vxlan).toMatch(/vxlan id 1 /);
      }
    });

    it('a pod on worker-1 reaches a pod on worker-2 across the VXLAN, by pod IP and through a Service', async () => {
      // Node.js from the submitter image on both ends (the bundle's busybox is Debian's static build, whose wget
      // crashes on its first lookup).
      const image = readNodeBundle(bundleDir).images.find((i) => i.name.includes('/tokenize-wiki-submitter:'))?.name;
      expect(image).toBeDefined();
      const pod = (name: string, nodeName: string, script: string) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default', labels: { app: name } },
        spec: {
          nodeName,
          terminationGracePeriodSeconds: 1,
          containers: [{ name, image, imagePullPolicy: 'IfNotPresent', command: ['node', '-e', script] }],
        },
      });
      await create(
        'probe-server',
        pod(
          'probe-server',
          'worker-2',
          "require('node:http').createServer((_, res) => res.end('from-worker-2')).listen(8080)",
        ),
      );
      await create('probe-client', pod('probe-client', 'worker-1', 'setInterval(() => {}, 3600_000)'));
      await create('probe-service', {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'probe-server', namespace: 'default' },
        spec: { selector: { app: 'probe-server' }, ports: [{ port: 80, targetPort: 8080 }] },
      });
      const up = await kubectl(
        'wait',
        '--for=condition=Ready',
        'pod/probe-server',
        'pod/probe-client',
        '--timeout=180s',
      );
      expect(up.code, up.stderr).toBe(0);
      const serverIp = (await kubectl('get', 'pod', 'probe-server', '-o', 'jsonpath={.status.podIP}')).stdout.trim();
      const podCidrs = (
        await kubectl('get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.spec.podCIDR} {end}')
      ).stdout;
      log(`e2e: pod CIDRs ${podCidrs.trim()}; probe-server on worker-2 at ${serverIp}`);
      try {
        for (const target of [`http://${serverIp}:8080/`, 'http://probe-server.default.svc.cluster.local/']) {
          const fetch = `fetch(${JSON.stringify(target)}, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text()).then((t) => process.stdout.write(t))`;
          // kube-proxy on worker-1 programs a new Service a moment after it exists (refused until then).
          let last = '';
          await waitFor(`${target} from probe-client`, 60_000, async () => {
            const r = await kubectl('exec', 'probe-client', '--', 'node', '-e', fetch);
            last = `${r.stdout.trim()} ${r.stderr.trim().split('\n').at(-1) ?? ''}`;
            return r.stdout.trim() === 'from-worker-2' ? true : undefined;
          }).catch((err: Error) => {
            throw new Error(`${err.message}; last: ${last}`);
          });
        }
      } finally {
        // Pods without a controller would stop a drain later.
        await kubectl('delete', 'pod/probe-server', 'pod/probe-client', 'service/probe-server', '--wait=false');
      }
    });

    let git: GitServer;
    const DUMP_DOCS = 4000;

    it("install-argocd --cluster dev-3, from the user's clone of a git server in the cluster network", async () => {
      git = await serveCheckout(cluster, cp, await serveDump(cluster, DUMP_DOCS, log), log, CLUSTER);
      const r = await op.timed(timings, 'installArgocdSeconds', 'install-argocd', ['--cluster', CLUSTER], NODE_CLONE);
      if (r.code !== 0) log(`e2e: Argo CD after install-argocd:\n${await op.clusterState(['argocd'])}`);
      expect(r.code).toBe(0);
      log(`e2e: Argo CD syncs ${git.url} at ${git.head.slice(0, 12)}`);
    });

    /** Pods by node: `namespace/name` lists. */
    async function podsByNode(namespace?: string): Promise<Record<string, string[]>> {
      const r = await kubectl(
        'get',
        'pods',
        ...(namespace ? ['-n', namespace] : ['-A']),
        '-o',
        'jsonpath={range .items[*]}{.spec.nodeName} {.metadata.namespace}/{.metadata.name} {.status.phase}{"\\n"}{end}',
      );
      const byNode: Record<string, string[]> = {};
      for (const [nodeName, pod, phase] of r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' '))) {
        if (phase === 'Succeeded' || phase === 'Failed') continue;
        (byNode[nodeName || '(unscheduled)'] ??= []).push(pod ?? '');
      }
      return byNode;
    }

    it('Argo CD syncs clusters/dev-3: every Application Synced and Healthy, the object store one pod per node', async () => {
      await op.createS3Secrets();
      const t0 = Date.now();
      await op.waitForApplications(DEV_APPLICATIONS, 25 * 60_000);
      timings.syncSeconds = seconds(t0);
      const store = await podsByNode('object-store');
      log(`e2e: object store pods by node ${JSON.stringify(store)}`);
      for (const name of NAMES) expect(store[name]?.filter((p) => p.includes('/seaweedfs-')).length, name).toBe(1);
    });

    it('the RayCluster: its head on the control plane, one worker on each worker node; pods on every node', async () => {
      expect(await op.rayClusterReady()).toBe(true);
      timings.rayClusterReadyAfterInitSeconds = seconds(initStarted);
      const ray = await rayPods();
      log(`e2e: Ray pods ${JSON.stringify(ray)}`);
      expect(ray.head).toEqual(['cp-1']);
      expect([...ray.workers].sort()).toEqual(['worker-1', 'worker-2']);
      const all = await podsByNode();
      log(
        `e2e: pods by node:\n${Object.entries(all)
          .map(([n, pods]) => `  ${n}: ${pods.sort().join(' ')}`)
          .join('\n')}`,
      );
      for (const name of NAMES) expect(all[name]?.length ?? 0, name).toBeGreaterThan(2);
    });

    /** The nodes the Ray head and workers run on. */
    async function rayPods(): Promise<{ head: string[]; workers: string[] }> {
      const r = await kubectl(
        '-n',
        'tokenize-wiki',
        'get',
        'pods',
        '-l',
        'ray.io/cluster=tokenize-wiki',
        '-o',
        'jsonpath={range .items[*]}{.metadata.labels.ray\\.io/node-type} {.spec.nodeName}{"\\n"}{end}',
      );
      const rows = r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' '));
      const on = (type: string) => rows.filter((row) => row[0] === type).map((row) => row[1] ?? '');
      return { head: on('head'), workers: on('worker') };
    }

    it('a run in flight while a worker node is drained under the PDBs (drains they forbid wait) runs to the end: verify OK, every page once', async () => {
      const t0 = Date.now();
      // Ticks until a task job's `run-tasks` runs on a worker node; that node is drained.
      const running = await op.ticksUntilRunTasks('dev', devRun, workers, 600_000);
      const [victim, tick] = [running.node.name, running.tick];
      const budgets = async () =>
        (
          await kubectl(
            'get',
            'pdb',
            '-A',
            '-o',
            'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.status.disruptionsAllowed} {end}',
          )
        ).stdout.trim();
      const before = await budgets();
      log(`e2e: run-tasks runs on ${victim} (tick ${tick}); disruptions allowed: ${before}`);
      expect(before).toContain('tokenize-wiki/ray-workers=1');
      const t1 = Date.now();
      const drain = await cp.exec(
        [
          'kubectl',
          '--kubeconfig=/etc/kubernetes/admin.conf',
          'drain',
          victim,
          '--ignore-daemonsets',
          '--delete-emptydir-data',
          '--timeout=600s',
        ],
        { timeoutMs: 660_000 },
      );
      timings.drainSeconds = seconds(t1);
      log(
        `e2e: kubectl drain ${victim} exited ${drain.code} in ${timings.drainSeconds} s:\n${(drain.stdout + drain.stderr).slice(-3000)}`,
      );
      expect(drain.code).toBe(0);
      const left = (await podsByNode())[victim] ?? [];
      const rayAfter = await rayPods();
      log(
        `e2e: on ${victim} after the drain: ${left.join(' ')}; Ray pods ${JSON.stringify(rayAfter)}; disruptions allowed: ${await budgets()}`,
      );
      expect(left.filter((p) => !p.startsWith('kube-system/kube-proxy') && !p.startsWith('kube-flannel/'))).toEqual([]);
      expect(rayAfter.workers).not.toContain(victim);
      // Where a budget allows no disruption, a drain waits: the drained node's object-store pod cannot start
      // elsewhere (its volume is on that node), so the other worker's may not go; the one Ray head may not go.
      // Server-side dry runs: the evictions are checked against the budgets and nothing is evicted.
      const other = workers.find((w) => w.name !== victim)?.name ?? '';
      for (const [node, pod] of [
        [other, 'seaweedfs-'],
        ['cp-1', 'tokenize-wiki-head-'],
      ] as const) {
        const blocked = await kubectl(
          'drain',
          node,
          '--ignore-daemonsets',
          '--delete-emptydir-data',
          '--dry-run=server',
          '--timeout=20s',
        );
        const output = blocked.stdout + blocked.stderr;
        log(
          `e2e: kubectl drain ${node} --dry-run=server exited ${blocked.code}: ${output
            .split('\n')
            .filter((l) => l.includes('disruption budget'))
            .slice(0, 2)
            .join(' | ')}`,
        );
        expect(blocked.code, output).not.toBe(0);
        expect(output).toMatch(new RegExp(`evicting pod .*${pod}[\\s\\S]*disruption budget`));
      }
      expect((await kubectl('uncordon', victim)).code).toBe(0);
      const { ticks, verified } = await op.ticksUntilVerified('dev', devRun, 12, tick);
      timings.runSecondsFromFirstTick = seconds(t0);
      timings.runTicks = ticks;
      const jobs = await op.rayJobs(devRun.run_id);
      const rate = op.docsPerSecond(jobs, DUMP_DOCS);
      if (rate !== undefined) timings.runDocsPerSecond = rate;
      log(`e2e: RayJobs:\n${jobs}\ne2e: verify:\n${verified.logs}`);
      if (!verified.ok) log(await op.clusterState(['tokenize-wiki', 'object-store']));
      expect(verified.ok).toBe(true);
    });

    it('no node pulled an image: everything came from the bundle', async () => {
      for (const node of cluster.nodes) expect(await op.pulledImages(node), node.name).toEqual([]);
    });
  },
);
