import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { activeFstabSwap, bootstrapNode, FSTAB_SWAP_SED } from '../../scripts/bootstrap-node.mjs';
import { CENTOS_9, captureIO, freshHost, planCommands, plannedSteps, UBUNTU_24, type FakeHost } from './fake-host.js';
import { repoRoot } from '../harness/paths.js';

const versions = parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { kubernetes: string };
const k8s = versions.kubernetes;
const minor = `v${k8s.split('.').slice(0, 2).join('.')}`;

const ALL_STEPS = [
  'swap-off',
  'swap-off-fstab',
  'kernel-modules-persisted',
  'kernel-modules-loaded',
  'sysctl-persisted',
  'sysctl-applied',
  'apt-prerequisites',
  'containerd-apt-repo',
  'containerd-installed',
  'containerd-config',
  'containerd-running',
  'kubernetes-apt-repo',
  'kubernetes-packages',
  'kubernetes-packages-held',
  'kubelet-enabled',
];

async function run(host: FakeHost, ...argv: string[]) {
  const { io, captured } = captureIO(host);
  const code = await bootstrapNode(argv, io);
  return { code, ...captured };
}

/** Plans are compared with versions replaced, so a version bump in versions.yaml needs no snapshot update. */
function normalize(lines: string[]): string {
  return `${lines.join('\n').replaceAll(k8s, '<kubernetes>').replaceAll(minor, '<kubernetes-minor>')}\n`;
}

describe('bootstrap-node --dry-run', () => {
  it('plans every step, in order, on a fresh Debian control-plane VM', async () => {
    const host = freshHost();
    const r = await run(host, '--role', 'control-plane', '--dry-run');
    expect(r.code).toBe(0);
    expect(plannedSteps(r.out)).toEqual(ALL_STEPS);
    expect(host.actions).toEqual([]); // a dry run changes nothing
    expect(host.unknownProbes).toEqual([]);
    const cmds = planCommands(r.out);
    // Pinned version from versions.yaml; pkgs.k8s.io's path carries the minor version.
    expect(cmds).toContain(
      `DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-change-held-packages 'kubelet=${k8s}-*' 'kubeadm=${k8s}-*' 'kubectl=${k8s}-*'`,
    );
    expect(cmds).toContain(
      `curl -fsSL -o /etc/apt/keyrings/kubernetes-apt-keyring.asc https://pkgs.k8s.io/core:/stable:/${minor}/deb/Release.key`,
    );
    expect(cmds).toContain(
      `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.asc] https://pkgs.k8s.io/core:/stable:/${minor}/deb/ /`,
    );
    expect(cmds).toContain('apt-mark hold kubelet kubeadm kubectl');
    expect(cmds).toContain("sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml");
    // The held packages are installed before they are held, containerd before kubelet.
    const idx = (s: string) => cmds.findIndex((c) => c.startsWith(s));
    expect(idx('swapoff -a')).toBeLessThan(idx('modprobe overlay'));
    expect(idx('DEBIAN_FRONTEND=noninteractive apt-get install -y containerd.io')).toBeLessThan(
      idx('DEBIAN_FRONTEND=noninteractive apt-get install -y --allow'),
    );
    expect(idx('DEBIAN_FRONTEND=noninteractive apt-get install -y --allow')).toBeLessThan(idx('apt-mark hold'));
    await expect(normalize(r.out)).toMatchFileSnapshot('plans/bootstrap-node-control-plane.plan.txt');
  });

  it('plans the same steps for a worker; only the preflight differs', async () => {
    const cp = await run(freshHost(), '--role', 'control-plane', '--dry-run');
    const worker = await run(freshHost(), '--role', 'worker', '--dry-run');
    expect(worker.code).toBe(0);
    expect(worker.out.slice(1)).toEqual(cp.out.slice(1));
    expect(worker.err.join('\n')).toContain('preflight ports-free: ok, 10250, 10256 free');
    expect(cp.err.join('\n')).toContain('preflight ports-free: ok, 6443, 2379, 2380, 10250, 10257, 10259 free');
  });

  it("uses Docker's repository for the host's distribution and release", async () => {
    const r = await run(freshHost(UBUNTU_24), '--role', 'worker', '--dry-run');
    expect(r.out).toContain(
      'deb [signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu noble stable',
    );
    expect(r.out).toContain('curl -fsSL -o /etc/apt/keyrings/docker.asc https://download.docker.com/linux/ubuntu/gpg');
  });

  it('on a half-configured host plans only the missing steps (containerd present, kubelet absent)', async () => {
    const host = freshHost();
    // What a previous, interrupted run left behind: everything up to containerd.
    await run(host, '--role', 'worker');
    for (const p of ['kubelet', 'kubeadm', 'kubectl']) host.packages.delete(p);
    host.held.clear();
    host.services.delete('kubelet');
    host.files.delete('/etc/apt/sources.list.d/kubernetes.list');
    host.actions = [];
    const r = await run(host, '--role', 'worker', '--dry-run');
    expect(r.code).toBe(0);
    expect(plannedSteps(r.out)).toEqual([
      'kubernetes-apt-repo',
      'kubernetes-packages',
      'kubernetes-packages-held',
      'kubelet-enabled',
    ]);
    expect(planCommands(r.out).join('\n')).not.toMatch(/containerd|swapoff|modprobe|sysctl/);
    expect(r.out.filter((l) => l.includes('already done'))).toHaveLength(ALL_STEPS.length - 4);
  });

  it('prints the plan but exits 1 when the preflight would refuse', async () => {
    const host = freshHost();
    host.nproc = 1;
    const r = await run(host, '--role', 'worker', '--dry-run');
    expect(r.code).toBe(1);
    expect(r.out).toContain('# preflight FAILED (a real run would refuse): cpu: 1 CPUs, need >= 2');
    expect(plannedSteps(r.out)).toEqual(ALL_STEPS);
  });
});

describe('bootstrap-node real run (fake host state)', () => {
  it('converges a fresh VM with exactly the planned commands; a second run is a no-op', async () => {
    const host = freshHost();
    const plan = await run(freshHost(), '--role', 'control-plane', '--dry-run');
    const first = await run(host, '--role', 'control-plane');
    expect(first.code).toBe(0);
    // Installing containerd.io and kubelet enables their services, so those two steps find their
    // state already reached: the real run is the plan minus them.
    const skipped = new Set(['systemctl enable --now containerd', 'systemctl enable kubelet']);
    expect(host.actions).toEqual(planCommands(plan.out).filter((c) => !skipped.has(c)));
    expect(first.err.filter((l) => / applied \(/.test(l))).toHaveLength(ALL_STEPS.length - 2);
    expect(first.err).toContainEqual(expect.stringMatching(/step 11\/15 containerd-running: already done, skipped/));
    expect(host.files.get('/etc/fstab')).toContain('# /swap.img');
    host.actions = [];
    const second = await run(host, '--role', 'control-plane');
    expect(second.code).toBe(0);
    expect(host.actions).toEqual([]);
    expect(second.err.filter((l) => l.includes('already done, skipped'))).toHaveLength(ALL_STEPS.length);
  });

  it('logs every step with its timing', async () => {
    const r = await run(freshHost(), '--role', 'worker');
    expect(r.err).toContainEqual(expect.stringMatching(/^\[bootstrap-node\] step 1\/15 swap-off: applied \(\d+ms\)$/));
    expect(r.err).toContainEqual(
      expect.stringMatching(/^\[bootstrap-node\] preflight cpu: ok, 4 CPUs, need >= 2 \(\d+ms\)$/),
    );
  });

  it('fails a step whose commands do not reach its state', async () => {
    const host = freshHost();
    // A containerd whose default config has no SystemdCgroup line: sed changes nothing.
    const exec = host.exec.bind(host);
    host.exec = async (argv, opts) => {
      const r = await exec(argv, opts);
      if (argv[0] === 'containerd') host.files.set('/etc/containerd/config.toml', 'version = 3\n');
      return r;
    };
    const r = await run(host, '--role', 'worker');
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toBe(
      'bootstrap-node: error: step 10/15 containerd-config: commands succeeded but the check still fails (/etc/containerd/config.toml has the CRI plugin on and SystemdCgroup = true)',
    );
    expect(host.actions.some((a) => a.includes('kubelet'))).toBe(false);
  });
});

describe('bootstrap-node refusals', () => {
  it('refuses an unsupported OS', async () => {
    const host = freshHost(CENTOS_9);
    const r = await run(host, '--role', 'worker');
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toBe(
      'bootstrap-node: error: unsupported OS: CentOS Stream 9; supported: Debian 12+, Ubuntu 22.04+',
    );
    expect(host.actions).toEqual([]);
  });

  it('refuses to change the host without root, but a dry run needs none', async () => {
    const host = freshHost();
    host.uidValue = 1000;
    const r = await run(host, '--role', 'worker');
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toMatch(
      /^bootstrap-node: error: must run as root \(try: sudo node --import tsx scripts\/bootstrap-node\.mts \.\.\.\)/,
    );
    expect((await run(host, '--role', 'worker', '--dry-run')).code).toBe(0);
    expect(host.actions).toEqual([]);
  });

  it('refuses a failed preflight before changing anything, listing every failure', async () => {
    const host = freshHost();
    host.cgroupFs = 'tmpfs';
    host.listening.push(6443);
    host.files.set('/proc/sys/kernel/hostname', 'localhost\n');
    const r = await run(host, '--role', 'control-plane');
    expect(r.code).toBe(1);
    const last = r.err.at(-1) ?? '';
    expect(last).toMatch(/^bootstrap-node: error: preflight failed, nothing was changed: /);
    expect(last).toContain('identity: hostname "localhost" is not a unique lowercase DNS name');
    expect(last).toContain('ports-free: port(s) 6443 already in use');
    expect(last).toContain('cgroup-v2: /sys/fs/cgroup is tmpfs');
    expect(host.actions).toEqual([]);
  });

  it('refuses to move kubelet to another version under a running cluster node', async () => {
    const host = freshHost();
    await run(host, '--role', 'worker');
    host.files.set('/etc/kubernetes/kubelet.conf', 'kind: Config\n');
    host.packages.set('kubelet', '1.30.4-1.1');
    host.actions = [];
    const r = await run(host, '--role', 'worker');
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toContain(
      `not-an-upgrade: this cluster node runs kubelet 1.30.4, versions.yaml pins ${k8s}: upgrade with kubeadm upgrade`,
    );
    expect(host.actions).toEqual([]);
  });

  it.each([
    [['--role', 'master'], 'bootstrap-node: usage error: --role must be control-plane or worker, got "master"'],
    [[], 'bootstrap-node: usage error: --role must be control-plane or worker'],
    [['--role', 'worker', '--force'], "bootstrap-node: usage error: Unknown option '--force' (see --help)"],
  ])('exits 2 on bad usage %j', async (argv, message) => {
    const host = freshHost();
    const r = await run(host, ...argv);
    expect(r.code).toBe(2);
    expect(r.err.at(-1)).toBe(message);
    expect(host.actions).toEqual([]);
  });

  it('--help prints usage and exits 0', async () => {
    const r = await run(freshHost(), '--help');
    expect(r.code).toBe(0);
    expect(r.out[0]).toMatch(
      /^Usage: sudo node --import tsx scripts\/bootstrap-node\.mts --role control-plane\|worker/,
    );
  });
});

describe('fstab swap edit', () => {
  it('the sed expression comments out exactly the lines the check calls active swap (real sed)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-fstab-'));
    const file = join(dir, 'fstab');
    const fstab = [
      '# /etc/fstab: static file system information.',
      'UUID=1 /               ext4    errors=remount-ro 0       1',
      '/swap.img\tnone\tswap\tsw\t0\t0',
      '  UUID=2 none swap sw 0 0',
      '# /dev/sdb1 none swap sw 0 0',
      '/dev/sdc1 /srv/swap ext4 defaults 0 2',
      '/dev/sdd1 none swap',
      '',
    ].join('\n');
    writeFileSync(file, fstab);
    expect(activeFstabSwap(fstab)).toHaveLength(3);
    execFileSync('sed', ['-E', '-i.bak', FSTAB_SWAP_SED, file]);
    const after = readFileSync(file, 'utf8');
    expect(activeFstabSwap(after)).toEqual([]);
    expect(after).toContain('# /swap.img\tnone\tswap');
    expect(after).toContain('/dev/sdc1 /srv/swap ext4 defaults 0 2\n');
    expect(readFileSync(`${file}.bak`, 'utf8')).toBe(fstab);
  });
});
