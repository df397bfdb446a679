// Removes what a run leaves on the host: node containers, their mounts, network namespaces (with any process
// still in them), cgroups and scratch folders. Synchronous, so it also runs from exit and signal handlers, and
// idempotent, so the `cleanup` entry can finish what a killed run started.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { cacheRoot } from '../harness/paths.js';
import { isAlive } from '../harness/proc.js';
import { PREFIX } from './network.js';

/** runc's state folder for the suite's containers (kept apart from any other runc user's /run/runc). */
export const RUNC_ROOT = '/run/tw-e2e-runc';
/** Parent cgroup of every node, under each cgroup v1 hierarchy. */
export const CGROUP_PARENT = 'tw-e2e';

export const runsDir = (): string => join(cacheRoot(), 'e2e', 'runs');
export const runDir = (runId: string): string => join(runsDir(), runId);

function quiet(cmd: string, args: readonly string[]): { code: number; stdout: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status ?? 1, stdout: r.stdout ?? '' };
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function containers(prefix: string): string[] {
  if (!existsSync(RUNC_ROOT)) return [];
  return quiet('runc', ['--root', RUNC_ROOT, 'list', '-q'])
    .stdout.split('\n')
    .filter((c) => c.startsWith(prefix));
}

function removeContainer(id: string): void {
  // SIGKILL to PID 1 ends every process of the node: they all live in its PID namespace.
  quiet('runc', ['--root', RUNC_ROOT, 'kill', id, 'KILL']);
  for (let i = 0; i < 50 && /"status":\s*"running"/.test(quiet('runc', ['--root', RUNC_ROOT, 'state', id]).stdout); i++)
    sleepSync(100);
  quiet('runc', ['--root', RUNC_ROOT, 'delete', '--force', id]);
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo; octal escapes decoded). */
export function mountsBelow(mountinfo: string, dir: string): string[] {
  const points = mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function unmountBelow(dir: string): void {
  for (const point of mountsBelow(readFileSync('/proc/self/mountinfo', 'utf8'), dir)) {
    if (quiet('umount', [point]).code !== 0) quiet('umount', ['-l', point]);
  }
}

function removeNetns(prefix: string): void {
  const names = quiet('ip', ['netns', 'list'])
    .stdout.split('\n')
    .map((l) => l.split(' ')[0] ?? '');
  for (const ns of names.filter((n) => n.startsWith(prefix))) {
    for (const pid of quiet('ip', ['netns', 'pids', ns]).stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    quiet('ip', ['netns', 'delete', ns]);
  }
}

/** Cgroup folders are removed bottom-up (rmdir only works on an empty cgroup without processes). */
function removeCgroupTree(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return;
  }
  for (const e of entries) removeCgroupTree(join(dir, e));
  for (let i = 0; i < 20; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      sleepSync(100);
    }
  }
}

function removeCgroups(prefix: string): void {
  const root = '/sys/fs/cgroup';
  const hierarchies = existsSync(join(root, 'cgroup.controllers'))
    ? [root]
    : readdirSync(root)
        .map((h) => join(root, h))
        .filter((h) => existsSync(join(h, CGROUP_PARENT)));
  for (const h of hierarchies) {
    const parent = join(h, CGROUP_PARENT);
    if (!existsSync(parent)) continue;
    for (const node of readdirSync(parent).filter((n) => n.startsWith(prefix))) removeCgroupTree(join(parent, node));
    try {
      rmdirSync(parent); // only when no other run has nodes in it
    } catch {
      // another run's nodes are there
    }
  }
}

/**
 * Kernel settings kubelet changes at start (pkg/kubelet/cm setupKernelTunables) and that no namespace isolates:
 * a node's kubelet changes them for the whole host. The run records them first and puts them back at teardown.
 */
export const HOST_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
] as const;

const sysctlsFile = (runId: string): string => join(runDir(runId), 'host-sysctls.json');

export function saveHostSysctls(runId: string): void {
  const values = Object.fromEntries(HOST_SYSCTLS.map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()]));
  writeFileSync(sysctlsFile(runId), `${JSON.stringify(values)}\n`);
}

function restoreHostSysctls(runId: string): void {
  let values: Record<string, string>;
  try {
    values = JSON.parse(readFileSync(sysctlsFile(runId), 'utf8')) as Record<string, string>;
  } catch {
    return;
  }
  for (const k of HOST_SYSCTLS) {
    const v = values[k];
    if (v === undefined) continue;
    try {
      if (readFileSync(`/proc/sys/${k}`, 'utf8').trim() !== v) writeFileSync(`/proc/sys/${k}`, v);
    } catch {
      // read-only or gone: nothing to put back
    }
  }
}

/** Tears down one run (its id) or, with no id, every run whose owning process is gone. */
export function teardown(runId?: string, log: (line: string) => void = () => {}): void {
  const ids = runId !== undefined ? [runId] : leftoverRuns();
  for (const id of ids) {
    const prefix = `${PREFIX}${id}`;
    for (const c of containers(`${prefix}-`)) removeContainer(c);
    unmountBelow(runDir(id));
    removeNetns(prefix);
    removeCgroups(prefix);
    restoreHostSysctls(id);
    rmSync(runDir(id), { recursive: true, force: true });
    log(`e2e: run ${id} torn down`);
  }
}

/** Runs whose owner (the process that started them) no longer lives. */
export function leftoverRuns(): string[] {
  const dir = runsDir();
  const fromDisk = existsSync(dir) ? readdirSync(dir).filter((d) => statSync(join(dir, d)).isDirectory()) : [];
  const owned = (id: string): boolean => {
    try {
      return isAlive(Number(readFileSync(join(runDir(id), 'owner'), 'utf8')));
    } catch {
      return false;
    }
  };
  // Namespaces and containers of a run whose folder is already gone are leftovers too.
  const fromNetns = quiet('ip', ['netns', 'list'])
    .stdout.split('\n')
    .map((l) => /^tw-e2e-([0-9a-f]+)(?:\s|-|$)/.exec(l)?.[1])
    .filter((id): id is string => id !== undefined);
  const fromRunc = containers(PREFIX)
    .map((c) => /^tw-e2e-([0-9a-f]+)-/.exec(c)?.[1])
    .filter((id): id is string => id !== undefined);
  return [...new Set([...fromDisk, ...fromNetns, ...fromRunc])].filter((id) => !owned(id));
}

/** Marks this process as the run's owner, so `cleanup` leaves a live run alone. */
export function claimRun(runId: string): void {
  writeFileSync(join(runDir(runId), 'owner'), String(process.pid));
}

const active = new Set<string>();
let hooked = false;

/**
 * Tears the run down when this process exits or gets SIGINT/SIGTERM/SIGHUP, whatever state it is in.
 * Returns "forget it" for the normal path, which tears down itself.
 */
export function teardownOnExit(runId: string): () => void {
  active.add(runId);
  if (!hooked) {
    hooked = true;
    const all = (): void => {
      for (const id of active) teardown(id);
      active.clear();
    };
    // Prepended: vitest's own handlers call process.exit() from inside 'exit', which skips later listeners.
    process.prependOnceListener('exit', all);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.prependOnceListener(signal, () => {
        all();
        if (process.listenerCount(signal) === 0) process.exit(128 + osConstants.signals[signal]);
      });
    }
  }
  return () => active.delete(runId);
}
