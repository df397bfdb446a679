// A fake *host state* behind the runner seam (allowed here: these scripts change hosts). It answers
// the scripts' probes from a small model of a Debian/Ubuntu machine, records every change as the
// same shell lines a dry run prints, and applies the effects of the commands bootstrap-node uses,
// so a real-mode run can be checked to converge.
import { basename } from 'node:path';
import { activeFstabSwap } from '../../scripts/bootstrap-node.mjs';
import { imageName, parseDebFileName } from '../../scripts/lib/bundle/node-bundle.js';
import {
  formatCommand,
  planLines,
  writeFilePlan,
  type CommandResult,
  type ExecOptions,
  type Host,
} from '../../scripts/lib/host.js';
import { repoRoot } from '../harness/paths.js';

export interface KubeAnswer {
  /** Every word must appear in the kubectl argv. */
  match: string[];
  result: Partial<CommandResult> | (() => Partial<CommandResult>);
}

export const DEBIAN_12 =
  'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n';
export const UBUNTU_24 =
  'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n';
export const CENTOS_9 = 'PRETTY_NAME="CentOS Stream 9"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="9"\n';

const SWAPS_HEADER = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n';

export class FakeHost implements Host {
  readonly dryRun = false;
  uidValue = 0;
  files = new Map<string, string>();
  packages = new Map<string, string>();
  held = new Set<string>();
  services = new Map<string, { active: boolean; enabled: boolean }>();
  nproc = 4;
  varFreeGiB = 80;
  cgroupFs = 'cgroup2fs';
  listening: number[] = [22];
  ipLink =
    'lo               UNKNOWN        00:00:00:00:00:00 <LOOPBACK,UP,LOWER_UP>\nens3             UP             52:54:00:12:34:56 <BROADCAST,MULTICAST,UP,LOWER_UP>\n';
  kube: KubeAnswer[] = [];
  /** Images in containerd's k8s.io namespace (`ctr images import` adds the archive's name). */
  images = new Set<string>();
  /** Those of `images` labelled pinned (import --label, or ctr images label). */
  pinned = new Set<string>();
  /** Test-specific command effects (e.g. kubeadm's); returns stdout, or undefined to fall through. */
  onExec?: (argv: readonly string[]) => string | undefined;
  /** Shell lines of every change, in order: directly comparable with a dry-run plan. */
  actions: string[] = [];
  probes: string[] = [];
  unknownProbes: string[] = [];

  uid(): number {
    return this.uidValue;
  }

  async probe(argv: readonly string[]): Promise<CommandResult> {
    const line = formatCommand(argv);
    this.probes.push(line);
    const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '' });
    const fail = (stderr = ''): CommandResult => ({ exitCode: 1, stdout: '', stderr });
    const [cmd, ...args] = argv;
    switch (cmd) {
      case 'nproc':
        return ok(`${this.nproc}\n`);
      case 'df':
        return ok(`Avail\n ${this.varFreeGiB}G\n`);
      case 'stat':
        return ok(`${this.cgroupFs}\n`);
      case 'ip':
        return ok(this.ipLink);
      case 'ss':
        return ok(this.listening.map((p) => `LISTEN 0 4096 0.0.0.0:${p} 0.0.0.0:*`).join('\n'));
      case 'dpkg-query': {
        const v = this.packages.get(args.at(-1) ?? '');
        return v ? ok(`install ok installed\t${v}`) : fail(`dpkg-query: no packages found matching ${args.at(-1)}`);
      }
      case 'systemctl': {
        const unit = this.services.get(args.at(-1) ?? '');
        const yes = args[0] === 'is-active' ? unit?.active : unit?.enabled;
        return yes ? ok() : fail();
      }
      case 'apt-mark':
        return ok([...this.held].map((p) => `${p}\n`).join(''));
      case 'cmp':
        // An installed bundle binary is the bundle's own (install -t records its source).
        return this.files.get(args.at(-1) ?? '') === `copy of ${args.at(-2)}` ? ok() : fail();
      case 'ctr': {
        const listed = args.some((a) => a.includes('io.cri-containerd.pinned')) ? this.pinned : this.images;
        return ok([...listed].map((i) => `${i}\n`).join(''));
      }
      case 'getent': {
        const user = args[1];
        if (user === 'root') return ok('root:x:0:0:root:/root:/bin/bash\n');
        if (user === 'alice') return ok('alice:x:1000:1000:Alice:/home/alice:/bin/bash\n');
        return { exitCode: 2, stdout: '', stderr: '' };
      }
      default: {
        // kubectl, kubeadm token list and ssh answers come from the test's `kube` table.
        const answer = this.kube.find((a) => a.match.every((w) => argv.includes(w)));
        if (!answer) {
          this.unknownProbes.push(line);
          return fail('unknown to the fake host');
        }
        const r = typeof answer.result === 'function' ? answer.result() : answer.result;
        return { exitCode: r.exitCode ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
      }
    }
  }

  async readFile(path: string): Promise<string | undefined> {
    return this.files.get(path);
  }

  async exists(path: string): Promise<boolean> {
    return this.files.has(path);
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<CommandResult> {
    this.actions.push(...planLines(argv, opts));
    const stdout = this.onExec?.(argv) ?? this.effect(argv);
    if (opts.stdoutFile) this.files.set(opts.stdoutFile, stdout);
    return { exitCode: 0, stdout, stderr: '' };
  }

  async writeFile(path: string, content: string, mode?: number): Promise<void> {
    this.actions.push(...writeFilePlan(path, content, mode));
    this.files.set(path, content);
  }

  /** What the commands bootstrap-node runs do to a Debian host; returns their stdout. */
  private effect(argv: readonly string[]): string {
    const [cmd, ...args] = argv;
    const enable = (unit: string, active: boolean) => {
      const s = this.services.get(unit) ?? { active: false, enabled: false };
      this.services.set(unit, { enabled: true, active: s.active || active });
    };
    switch (cmd) {
      case 'swapoff':
        this.files.set('/proc/swaps', SWAPS_HEADER);
        break;
      case 'sed': {
        const file = args.at(-1) ?? '';
        const text = this.files.get(file) ?? '';
        if (file === '/etc/fstab') {
          const swap = new Set(activeFstabSwap(text));
          this.files.set(
            file,
            text
              .split('\n')
              .map((l) => (swap.has(l) ? `# ${l}` : l))
              .join('\n'),
          );
        } else if (args.some((a) => a.includes('sandbox = '))) {
          const line = /\\1(.*)#$/.exec(args.find((a) => a.includes('sandbox = ')) ?? '')?.[1] ?? '';
          this.files.set(file, text.replace(/^(\s*)sandbox = .*$/m, `$1${line}`));
        } else if (args.some((a) => a.includes('restrict_oom_score_adj'))) {
          this.files.set(file, text.replace('restrict_oom_score_adj = false', 'restrict_oom_score_adj = true'));
        } else {
          this.files.set(file, text.replace('SystemdCgroup = false', 'SystemdCgroup = true'));
        }
        break;
      }
      case 'modprobe':
        this.files.set(`/sys/module/${args[0]}`, '');
        break;
      case 'sysctl':
        for (const line of (this.files.get('/etc/sysctl.d/99-kubernetes.conf') ?? '').split('\n')) {
          const [k, v] = line.split('=').map((s) => s.trim());
          if (k && v) this.files.set(`/proc/sys/${k.replaceAll('.', '/')}`, `${v}\n`);
        }
        break;
      case 'curl':
        this.files.set(args[args.indexOf('-o') + 1] ?? '', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n');
        break;
      case 'apt-get':
        if (args[0] === 'install') {
          for (const spec of args.slice(1).filter((a) => !a.startsWith('-'))) {
            const [name = '', version] = spec.split('=');
            this.packages.set(name, version ? version.replace('*', '1.1') : '1.0-1');
            // Debian packages enable and start their services on install.
            if (name === 'containerd.io') enable('containerd', true);
            if (name === 'kubelet') enable('kubelet', false);
          }
        }
        break;
      case 'apt-mark':
        for (const p of args.slice(1)) this.held.add(p);
        break;
      case 'dpkg':
        for (const f of args.slice(1)) {
          const deb = parseDebFileName(basename(f));
          if (deb) this.packages.set(deb.package, deb.version);
          if (deb?.package === 'containernetworking-plugins') {
            for (const p of ['bridge', 'host-local', 'portmap', 'loopback']) this.files.set(`/usr/lib/cni/${p}`, 'ELF');
          }
        }
        break;
      case 'install':
        if (args.includes('-t')) {
          const dir = args[args.indexOf('-t') + 1] ?? '';
          for (const src of args.slice(args.indexOf('-t') + 2))
            this.files.set(`${dir}/${basename(src)}`, `copy of ${src}`);
        }
        break;
      case 'ln': {
        const dir = (args.at(-1) ?? '').replace(/\/$/, '');
        for (const src of args.slice(1, -1))
          if (this.files.has(src)) this.files.set(`${dir}/${basename(src)}`, `link to ${src}`);
        break;
      }
      case 'ctr': {
        const pin = args.includes('io.cri-containerd.pinned=pinned');
        if (args.includes('import')) {
          const name = imageName(args.at(-1) ?? '');
          this.images.add(name);
          if (pin) this.pinned.add(name);
        }
        if (args.includes('label') && pin) this.pinned.add(args.at(-2) ?? '');
        break;
      }
      case 'systemctl':
        if (args[0] === 'enable') enable(args.at(-1) ?? '', args.includes('--now'));
        if (args[0] === 'restart') {
          // A restart starts a unit; it does not enable it.
          const unit = args.at(-1) ?? '';
          this.services.set(unit, { enabled: this.services.get(unit)?.enabled ?? false, active: true });
        }
        break;
      case 'containerd':
        return "version = 3\n[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = 'registry.k8s.io/pause:3.10'\n[plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = false\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = false\n";
    }
    return '';
  }
}

/** A fresh VM as cloud images ship it: swap on, nothing Kubernetes-related installed. */
export function freshHost(osRelease = DEBIAN_12): FakeHost {
  const h = new FakeHost();
  h.files.set('/etc/os-release', osRelease);
  h.files.set('/proc/meminfo', 'MemTotal:        8131624 kB\nMemFree:         7000000 kB\n');
  h.files.set('/proc/sys/kernel/hostname', 'cp-1\n');
  h.files.set('/sys/class/dmi/id/product_uuid', '5e1d0a7c-3b2f-4c8e-9d6a-1f2e3d4c5b6a\n');
  h.files.set('/proc/swaps', `${SWAPS_HEADER}/swap.img                                file\t\t2097148\t\t0\t\t-2\n`);
  h.files.set('/etc/fstab', 'UUID=abcd / ext4 errors=remount-ro 0 1\n/swap.img\tnone\tswap\tsw\t0\t0\n');
  for (const k of [
    'net/bridge/bridge-nf-call-iptables',
    'net/bridge/bridge-nf-call-ip6tables',
    'net/ipv4/ip_forward',
  ]) {
    h.files.set(`/proc/sys/${k}`, '0\n');
  }
  h.packages.set('ca-certificates', '20230311');
  h.services.set('ssh', { active: true, enabled: true });
  return h;
}

export interface Captured {
  out: string[];
  err: string[];
}

export function captureIO(host: Host, env: Record<string, string | undefined> = {}) {
  const captured: Captured = { out: [], err: [] };
  let t = 0;
  return {
    captured,
    io: {
      host,
      out: (l: string) => captured.out.push(l),
      err: (l: string) => captured.err.push(l),
      env,
      repoRoot,
      now: () => (t += 5),
    },
  };
}

/** Step headers of a plan: `# step 3/15 name: ...` -> name, for steps that would run. */
export function plannedSteps(plan: readonly string[]): string[] {
  return plan.flatMap((l) => {
    const m = /^# step \d+\/\d+ ([a-z0-9-]+): (.*)$/.exec(l);
    return m?.[1] && !m[2]?.startsWith('already done') ? [m[1]] : [];
  });
}

/** The commands of a plan (no comments): what a real run executes. */
export function planCommands(plan: readonly string[]): string[] {
  return plan.filter((l) => !l.startsWith('#'));
}
