// Joins a bootstrapped node to the cluster as a worker, with the join command written by
// init-control-plane.mts: from a file, from an argument, or read over SSH from the control plane.
import { main, runScript, type ScriptSpec } from './lib/cli.js';
import { UsageError } from './lib/errors.js';
import {
  hostname,
  machineIdentity,
  nodeReadyCheck,
  portsFreeCheck,
  requireRoot,
  requireSupportedOs,
} from './lib/facts.js';
import type { Host } from './lib/host.js';
import { runPreflight, runSteps, type PreflightCheck, type ScriptIO, type Step } from './lib/run.js';
import { loadVersions } from './lib/versions.js';
import { ADMIN_CONF, DEFAULT_JOIN_FILE } from './lib/kubeadm-config.js';

export const KUBELET_CONF = '/etc/kubernetes/kubelet.conf';

const options = {
  'join-file': { type: 'string' },
  'join-command': { type: 'string' },
  ssh: { type: 'string' },
  'remote-join-file': { type: 'string' },
  'allow-cgroup-v1': { type: 'boolean' },
} as const;

const spec = {
  name: 'join-worker',
  options,
  usage: `
Usage: sudo node --import tsx scripts/join-worker.mts (--ssh USER@CONTROL_PLANE | --join-file PATH | --join-command 'kubeadm join ...') [--allow-cgroup-v1] [--dry-run]

Runs on a node prepared with bootstrap-node.mts --role worker and joins it to the cluster with
'kubeadm join'. Does nothing if the node has already joined (${KUBELET_CONF} exists).

  --ssh USER@HOST          read the join command from the control plane over SSH (as $SUDO_USER,
                           with 'sudo -n cat' there) and refuse if this host's name or product_uuid
                           is already used by a node of the cluster. For a key in an ssh agent, run
                           with 'sudo --preserve-env=SSH_AUTH_SOCK'; a host not yet in known_hosts
                           is added to it (StrictHostKeyChecking=accept-new)
  --remote-join-file PATH  the file read over SSH (default ${DEFAULT_JOIN_FILE})
  --join-file PATH         a local file holding the join command
  --join-command CMD       the join command itself
  --allow-cgroup-v1        join from a cgroup v1 host (deprecated; see bootstrap-node.mts): skips kubeadm's
                           SystemVerification preflight, which refuses cgroup v1 for kubelet >= 1.35 (the
                           kubelet config, with failCgroupV1: false, comes from the control plane)
  --dry-run                print the commands a real run would execute, change nothing
  -h, --help               this text

Exit codes: 0 done, 1 refused or a step failed, 2 bad usage.`,
} satisfies ScriptSpec<typeof options>;

export interface JoinCommand {
  endpoint: string;
  token: string;
  caCertHash: string;
}

/** Accepts exactly the worker join command kubeadm prints, so nothing else can be executed. */
export function parseJoinCommand(text: string, source: string): JoinCommand {
  const words = text.replace(/\\\n/g, ' ').trim().split(/\s+/);
  const fail = (why: string): never => {
    throw new UsageError(`${source}: not a kubeadm worker join command (${why})`);
  };
  if (words[0] !== 'kubeadm' || words[1] !== 'join') fail('it must start with "kubeadm join"');
  const endpoint = words[2] ?? '';
  if (!/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(endpoint)) fail(`bad API endpoint "${endpoint}"`);
  let token: string | undefined;
  let caCertHash: string | undefined;
  for (let i = 3; i < words.length; i += 2) {
    const [flag, value] = [words[i], words[i + 1] ?? ''];
    if (flag === '--token' && /^[a-z0-9]{6}\.[a-z0-9]{16}$/.test(value)) token = value;
    else if (flag === '--discovery-token-ca-cert-hash' && /^sha256:[a-f0-9]{64}$/.test(value)) caCertHash = value;
    else fail(`unexpected "${[flag, value].filter(Boolean).join(' ')}"`);
  }
  if (!token) return fail('no --token');
  if (!caCertHash) return fail('no --discovery-token-ca-cert-hash');
  return { endpoint, token, caCertHash };
}

export function joinArgv(cmd: JoinCommand, allowCgroupV1 = false): string[] {
  const argv = [
    'kubeadm',
    'join',
    cmd.endpoint,
    '--token',
    cmd.token,
    '--discovery-token-ca-cert-hash',
    cmd.caCertHash,
  ];
  return allowCgroupV1 ? [...argv, '--ignore-preflight-errors=SystemVerification'] : argv;
}

type Source =
  | { kind: 'file'; path: string }
  | { kind: 'arg'; command: string }
  | { kind: 'ssh'; target: string; remoteFile: string };

type Env = ScriptIO['env'];

function sshArgv(target: string, env: Env, remote: string[]): string[] {
  // ssh runs as the invoking user so that their keys and known_hosts are used, not root's. sudo resets the
  // environment (into this script, and again into `sudo -u`), so the agent socket reaches ssh as an option. A control
  // plane never contacted before is added to known_hosts (accept-new); a changed host key is still refused.
  const agent = env.SSH_AUTH_SOCK ? ['-o', `IdentityAgent=${env.SSH_AUTH_SOCK}`] : [];
  const ssh = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new', ...agent, target, ...remote];
  return env.SUDO_USER && env.SUDO_USER !== 'root' ? ['sudo', '-u', env.SUDO_USER, ...ssh] : ssh;
}

/** Why an ssh to the control plane failed, and the likely fix when no agent socket came through sudo. */
function sshFailure(target: string, what: string, stderr: string, env: Env): string {
  const hint = env.SSH_AUTH_SOCK
    ? ''
    : ' (no SSH_AUTH_SOCK here: for a key held by an ssh agent, run with sudo --preserve-env=SSH_AUTH_SOCK)';
  return `--ssh ${target}: cannot ${what}: ${stderr.trim().split('\n')[0] ?? ''}${hint}`;
}

async function readJoinCommand(host: Host, source: Source, env: Env): Promise<JoinCommand> {
  switch (source.kind) {
    case 'arg':
      return parseJoinCommand(source.command, '--join-command');
    case 'file': {
      const text = await host.readFile(source.path);
      if (text === undefined) throw new UsageError(`--join-file ${source.path}: cannot read it`);
      return parseJoinCommand(text, source.path);
    }
    case 'ssh': {
      const r = await host.probe(sshArgv(source.target, env, ['sudo', '-n', 'cat', source.remoteFile]));
      if (r.exitCode !== 0) throw new UsageError(sshFailure(source.target, `read ${source.remoteFile}`, r.stderr, env));
      return parseJoinCommand(r.stdout, `${source.target}:${source.remoteFile}`);
    }
  }
}

function uniqueInClusterCheck(target: string, env: Env): PreflightCheck {
  return {
    name: 'unique-in-cluster',
    async run(host) {
      const r = await host.probe(
        sshArgv(target, env, ['sudo', '-n', 'kubectl', `--kubeconfig=${ADMIN_CONF}`, 'get', 'nodes', '-o', 'json']),
      );
      if (r.exitCode !== 0) return { ok: false, detail: sshFailure(target, "list the cluster's nodes", r.stderr, env) };
      const nodes = (
        JSON.parse(r.stdout) as {
          items: { metadata: { name: string }; status?: { nodeInfo?: { systemUUID?: string; machineID?: string } } }[];
        }
      ).items;
      const name = (await hostname(host)).toLowerCase();
      // kubelet reports product_uuid as systemUUID and /etc/machine-id as machineID.
      const id = await machineIdentity(host);
      const theirs = (n: (typeof nodes)[number]) =>
        id.label === 'machine-id' ? n.status?.nodeInfo?.machineID : n.status?.nodeInfo?.systemUUID;
      const clash = nodes.find(
        (n) => n.metadata.name === name || (id.value !== '' && theirs(n)?.toLowerCase() === id.value),
      );
      return clash
        ? {
            ok: false,
            detail: `node ${clash.metadata.name} already has this hostname (${name}) or ${id.label}; cloned VM?`,
          }
        : { ok: true, detail: `hostname ${name} and ${id.label} unused among ${nodes.length} node(s)` };
    },
  };
}

export function joinSteps(resolve: (host: Host) => Promise<JoinCommand>, allowCgroupV1 = false): Step[] {
  return [
    {
      name: 'kubeadm-join',
      goal: 'this node joined the cluster as a worker',
      check: (host) => host.exists(KUBELET_CONF),
      apply: async (host) => void (await host.exec(joinArgv(await resolve(host), allowCgroupV1))),
    },
  ];
}

function pickSource(flags: {
  'join-file'?: string;
  'join-command'?: string;
  ssh?: string;
  'remote-join-file'?: string;
}): Source {
  const given = [flags['join-file'], flags['join-command'], flags.ssh].filter((v) => v !== undefined).length;
  if (given !== 1) throw new UsageError('give exactly one of --ssh, --join-file, --join-command');
  if (flags['join-file'] !== undefined) return { kind: 'file', path: flags['join-file'] };
  if (flags['join-command'] !== undefined) return { kind: 'arg', command: flags['join-command'] };
  return { kind: 'ssh', target: flags.ssh ?? '', remoteFile: flags['remote-join-file'] ?? DEFAULT_JOIN_FILE };
}

export function joinWorker(argv: readonly string[], io: ScriptIO): Promise<number> {
  return runScript(spec, argv, io, async (flags, { host, log, out }) => {
    const source = pickSource(flags);
    const versions = loadVersions(io.repoRoot);
    requireRoot(host, spec.name);
    await requireSupportedOs(host);
    const joined = await host.exists(KUBELET_CONF);
    let command: JoinCommand | undefined;
    const checks: PreflightCheck[] = [nodeReadyCheck(versions.kubernetes), portsFreeCheck([10250, 10256])];
    if (!joined) {
      // Read and validate the join command before changing anything.
      checks.push({
        name: 'join-command',
        async run(h) {
          command = await readJoinCommand(h, source, io.env);
          return { ok: true, detail: `API server ${command.endpoint}` };
        },
      });
      if (source.kind === 'ssh') checks.push(uniqueInClusterCheck(source.target, io.env));
    }
    const preflightOk = await runPreflight(checks, host, log, out);
    await runSteps(
      joinSteps(async (h) => command ?? readJoinCommand(h, source, io.env), flags['allow-cgroup-v1'] === true),
      host,
      log,
      out,
    );
    if (!host.dryRun) log.info('worker joined; check with: kubectl get nodes (on the control plane)');
    return preflightOk ? 0 : 1;
  });
}

await main(import.meta.url, joinWorker);
