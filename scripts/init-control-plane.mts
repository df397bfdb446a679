// Turns a bootstrapped node into the control plane of clusters/<name>: kubeadm init from the
// config in git, a kubeconfig for the invoking user, the Flannel pod network (the same
// kustomization Argo CD adopts later), and a join command file for the workers.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main, runScript, type ScriptSpec } from './lib/cli.js';
import { RefusalError, UsageError } from './lib/errors.js';
import {
  containerdImages,
  hostname,
  nodeReadyCheck,
  portsFreeCheck,
  requireRoot,
  requireSupportedOs,
} from './lib/facts.js';
import type { Host } from './lib/host.js';
import {
  ADMIN_CONF,
  CGROUP_V1_CONFIG,
  DEFAULT_JOIN_FILE,
  readKubeadmConfig,
  withCgroupV1Allowed,
  type KubeadmConfig,
} from './lib/kubeadm-config.js';
import { requireCluster } from './lib/repo.js';
import { runPreflight, runSteps, type PreflightCheck, type ScriptIO, type Step } from './lib/run.js';
import { loadVersions } from './lib/versions.js';

/** Flannel's net-conf.json Network: kubeadm's podSubnet must be the same range. */
export const FLANNEL_NETWORK = '10.244.0.0/16';
const CONTROL_PLANE_TAINT = 'node-role.kubernetes.io/control-plane';

const options = {
  cluster: { type: 'string' },
  user: { type: 'string' },
  'join-file': { type: 'string' },
  'allow-cgroup-v1': { type: 'boolean' },
  offline: { type: 'boolean' },
} as const;

const spec = {
  name: 'init-control-plane',
  options,
  usage: `
Usage: sudo node --import tsx scripts/init-control-plane.mts --cluster NAME [--user USER] [--join-file PATH] [--allow-cgroup-v1] [--offline] [--dry-run]

Runs on the node prepared with bootstrap-node.mts --role control-plane:
  kubeadm init --config clusters/NAME/kubeadm-config.yaml (pinned version, pod subnet ${FLANNEL_NETWORK}),
  copies the admin kubeconfig to ~USER/.kube/config, applies infrastructure/flannel and waits for
  the node to be Ready, removes the control-plane taint when the config says taints: [] (one-node
  dev), and writes 'kubeadm token create --print-join-command' to the join file (mode 0600).
  Re-running is safe; an expired join token is replaced.

  --cluster NAME     a folder under clusters/ with kubeadm-config.yaml (prod, dev)
  --user USER        who gets ~/.kube/config (default: $SUDO_USER, else root)
  --join-file PATH   where the join command goes (default ${DEFAULT_JOIN_FILE})
  --allow-cgroup-v1  run on a cgroup v1 host (deprecated; see bootstrap-node.mts --allow-cgroup-v1):
                     kubeadm gets the cluster's config plus kubelet failCgroupV1: false, written to
                     ${CGROUP_V1_CONFIG}, and skips its SystemVerification preflight, which
                     refuses cgroup v1 for kubelet >= 1.35 whatever the kubelet config says
  --offline          the node reaches no registry (installed with bootstrap-node.mts --bundle): refuse
                     before kubeadm init when an image it needs is not in containerd, instead of
                     letting kubeadm try to pull each one
  --dry-run          print the commands a real run would execute, change nothing
  -h, --help         this text

Exit codes: 0 done, 1 refused or a step failed, 2 bad usage.`,
} satisfies ScriptSpec<typeof options>;

export function kubectl(...args: string[]): string[] {
  return ['kubectl', `--kubeconfig=${ADMIN_CONF}`, ...args];
}

/** kubectl for state probes: short timeout so a missing API server reads as "not there yet". */
function kubectlProbe(...args: string[]): string[] {
  return kubectl('--request-timeout=10s', ...args);
}

interface Account {
  name: string;
  uid: string;
  gid: string;
  home: string;
}

async function account(host: Host, name: string): Promise<Account> {
  const r = await host.probe(['getent', 'passwd', name]);
  const f = r.stdout.trim().split(':');
  if (r.exitCode !== 0 || f.length < 7 || !f[2] || !f[3] || !f[5])
    throw new UsageError(`--user ${name}: no such user on this host`);
  return { name, uid: f[2], gid: f[3], home: f[5] };
}

export function joinToken(command: string): string | undefined {
  return /--token\s+(\S+)/.exec(command)?.[1];
}

export function initSteps(opts: {
  config: KubeadmConfig;
  flannelDir: string;
  nodeName: string;
  user: Account;
  joinFile: string;
  /** The config text with cgroup v1 allowed (--allow-cgroup-v1), or undefined for the config as it is in git. */
  cgroupV1Config?: string;
}): Step[] {
  const { config, flannelDir, nodeName, user, joinFile, cgroupV1Config } = opts;
  const kubeDir = join(user.home, '.kube');
  const userConf = join(kubeDir, 'config');
  const steps: Step[] = [];
  if (cgroupV1Config !== undefined) {
    steps.push({
      name: 'kubeadm-config-cgroup-v1',
      goal: `${CGROUP_V1_CONFIG} is ${config.file} with kubelet failCgroupV1: false`,
      check: async (host) =>
        (await host.exists(ADMIN_CONF)) || (await host.readFile(CGROUP_V1_CONFIG)) === cgroupV1Config,
      async apply(host) {
        await host.exec(['install', '-d', '-m', '0755', '/etc/kubernetes']);
        await host.writeFile(CGROUP_V1_CONFIG, cgroupV1Config, 0o600);
      },
    });
  }
  const initArgv =
    cgroupV1Config === undefined
      ? ['kubeadm', 'init', `--config=${config.file}`]
      : ['kubeadm', 'init', `--config=${CGROUP_V1_CONFIG}`, '--ignore-preflight-errors=SystemVerification'];
  steps.push(
    {
      name: 'kubeadm-init',
      goal: `control plane of cluster ${config.clusterName} running Kubernetes ${config.kubernetesVersion}`,
      check: (host) => host.exists(ADMIN_CONF),
      apply: async (host) => void (await host.exec(initArgv)),
    },
    {
      name: 'user-kubeconfig',
      goal: `${userConf} is the cluster's admin kubeconfig, owned by ${user.name}`,
      async check(host) {
        const admin = await host.readFile(ADMIN_CONF);
        return admin !== undefined && (await host.readFile(userConf)) === admin;
      },
      async apply(host) {
        await host.exec(['install', '-d', '-m', '0700', '-o', user.uid, '-g', user.gid, kubeDir]);
        await host.exec(['install', '-m', '0600', '-o', user.uid, '-g', user.gid, ADMIN_CONF, userConf]);
      },
    },
    {
      name: 'pod-network',
      goal: 'Flannel applied from infrastructure/flannel (Argo CD adopts it later)',
      check: async (host) =>
        (await host.probe(kubectlProbe('-n', 'kube-flannel', 'get', 'daemonset', 'kube-flannel-ds', '-o', 'name')))
          .exitCode === 0,
      // Client-side apply, as Argo CD's flannel Application syncs, so Argo CD adopts it with no diff.
      apply: async (host) => void (await host.exec(kubectl('apply', '-k', flannelDir))),
    },
    {
      name: 'node-ready',
      goal: `node ${nodeName} Ready (pod network up)`,
      async check(host) {
        const r = await host.probe(
          kubectlProbe('get', 'node', nodeName, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'),
        );
        return r.exitCode === 0 && r.stdout.trim() === 'True';
      },
      async apply(host) {
        await host.exec(
          kubectl('-n', 'kube-flannel', 'rollout', 'status', 'daemonset/kube-flannel-ds', '--timeout=300s'),
        );
        await host.exec(kubectl('wait', '--for=condition=Ready', `node/${nodeName}`, '--timeout=300s'));
      },
    },
  );
  if (config.singleNode) {
    steps.push({
      name: 'control-plane-untainted',
      goal: `node ${nodeName} accepts workloads (one-node cluster: no ${CONTROL_PLANE_TAINT} taint)`,
      async check(host) {
        const r = await host.probe(kubectlProbe('get', 'node', nodeName, '-o', 'jsonpath={.spec.taints[*].key}'));
        return r.exitCode === 0 && !r.stdout.split(/\s+/).includes(CONTROL_PLANE_TAINT);
      },
      apply: async (host) =>
        void (await host.exec(kubectl('taint', 'nodes', nodeName, `${CONTROL_PLANE_TAINT}:NoSchedule-`))),
    });
  }
  steps.push({
    name: 'join-command',
    goal: `${joinFile} holds a join command with a live token`,
    async check(host) {
      const token = joinToken((await host.readFile(joinFile)) ?? '');
      if (!token) return false;
      // Expired bootstrap tokens are deleted by the cluster, so a listed token is a live one.
      const r = await host.probe(['kubeadm', 'token', 'list', `--kubeconfig=${ADMIN_CONF}`]);
      return r.exitCode === 0 && r.stdout.includes(token);
    },
    apply: async (host) =>
      void (await host.exec(['kubeadm', 'token', 'create', '--print-join-command', `--kubeconfig=${ADMIN_CONF}`], {
        stdoutFile: joinFile,
        mode: 0o600,
      })),
  });
  return steps;
}

/** Air-gapped: every image kubeadm init runs is already in containerd (kubeadm would otherwise try registries). */
function imagesPresentCheck(configFile: string): PreflightCheck {
  return {
    name: 'images-present',
    async run(host) {
      if (await host.exists(ADMIN_CONF)) return { ok: true, detail: 'control plane already initialized' };
      const r = await host.probe(['kubeadm', 'config', 'images', 'list', `--config=${configFile}`]);
      const wanted = r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      if (r.exitCode !== 0 || wanted.length === 0)
        return { ok: false, detail: `kubeadm config images list failed: ${r.stderr.trim().split('\n')[0] ?? ''}` };
      const have = await containerdImages(host);
      const missing = wanted.filter((i) => !have.has(i));
      return missing.length === 0
        ? { ok: true, detail: `${wanted.length} images kubeadm needs are in containerd` }
        : {
            ok: false,
            detail: `not in containerd: ${missing.join(', ')} (the bundle lacks them: rebuild it, then bootstrap-node.mts --bundle again)`,
          };
    },
  };
}

export function initControlPlane(argv: readonly string[], io: ScriptIO): Promise<number> {
  return runScript(spec, argv, io, async (flags, { host, log, out }) => {
    const dir = requireCluster(io.repoRoot, flags.cluster, 'clusters', 'kubeadm-config.yaml');
    const cluster = flags.cluster ?? '';
    const versions = loadVersions(io.repoRoot);
    const config = readKubeadmConfig(join(dir, 'kubeadm-config.yaml'));
    const rel = `clusters/${cluster}/kubeadm-config.yaml`;
    if (config.kubernetesVersion !== `v${versions.kubernetes}`) {
      throw new UsageError(
        `${rel}: kubernetesVersion ${config.kubernetesVersion} differs from versions.yaml kubernetes ${versions.kubernetes}`,
      );
    }
    if (config.podSubnet !== FLANNEL_NETWORK) {
      throw new UsageError(
        `${rel}: networking.podSubnet ${config.podSubnet} differs from Flannel's network ${FLANNEL_NETWORK}`,
      );
    }
    if (config.clusterName !== cluster) {
      throw new UsageError(`${rel}: clusterName ${config.clusterName} differs from the folder name ${cluster}`);
    }
    const flannelDir = join(io.repoRoot, 'infrastructure', 'flannel');
    requireRoot(host, spec.name);
    await requireSupportedOs(host);
    const userName = flags.user ?? io.env.SUDO_USER ?? 'root';
    const user = await account(host, userName);
    const nodeName = config.nodeName ?? (await hostname(host)).toLowerCase();
    if (!nodeName) throw new RefusalError("cannot read this host's hostname (/proc/sys/kernel/hostname)");
    const joinFile = flags['join-file'] ?? DEFAULT_JOIN_FILE;
    log.info(`cluster ${cluster}, node ${nodeName}, Kubernetes ${versions.kubernetes}, kubeconfig for ${user.name}`);
    const checks: PreflightCheck[] = [
      nodeReadyCheck(versions.kubernetes),
      portsFreeCheck([6443, 2379, 2380, 10250, 10257, 10259]),
      {
        name: 'flannel-kustomization',
        // A file of this checkout, not of the host: read it directly.
        run: async () =>
          existsSync(join(flannelDir, 'kustomization.yaml'))
            ? { ok: true, detail: 'infrastructure/flannel/kustomization.yaml present' }
            : { ok: false, detail: 'infrastructure/flannel/kustomization.yaml is missing in this checkout' },
      },
    ];
    if (flags.offline) checks.push(imagesPresentCheck(config.file));
    const preflightOk = await runPreflight(checks, host, log, out);
    const cgroupV1Config = flags['allow-cgroup-v1']
      ? withCgroupV1Allowed(readFileSync(config.file, 'utf8'))
      : undefined;
    await runSteps(initSteps({ config, flannelDir, nodeName, user, joinFile, cgroupV1Config }), host, log, out);
    if (!host.dryRun) {
      log.info(`control plane ready; kubeconfig: ${join(user.home, '.kube', 'config')}; join command: ${joinFile}`);
      log.info(`next, on each worker: sudo node --import tsx scripts/join-worker.mts --ssh ${user.name}@<this host>`);
      log.info(`then, as ${user.name}: node --import tsx scripts/install-argocd.mts --cluster ${cluster}`);
    }
    return preflightOk ? 0 : 1;
  });
}

await main(import.meta.url, initControlPlane);
