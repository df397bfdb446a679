// The node root filesystem: a minimal Debian 12 as a fresh VM would have it (systemd as init, ssh, sudo), built
// once with debootstrap and cached. Everything Kubernetes needs beyond it comes from the bundle, installed by
// bootstrap-node --bundle: that is the air-gapped path under test.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { cacheRoot } from '../harness/paths.js';
import { run, withLock } from '../harness/proc.js';

export const SUITE = 'bookworm';
export const MIRROR = 'http://deb.debian.org/debian';

/** What a minimal Debian 12 server has; kubeadm's tools (iptables, conntrack, ...) deliberately come from the bundle. */
export const ROOTFS_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'kmod',
  'iproute2',
  'procps',
  'ca-certificates',
  'util-linux',
  'openssh-server',
  'sudo',
  // Node.js runs the scripts on the node; its official builds link libatomic.
  'libatomic1',
] as const;

/**
 * Units a container cannot run: no udev (devices belong to the host), no kernel-module or binfmt setup, no
 * getty (no console). Masked, so systemd reports `running` instead of `degraded`.
 */
export const MASKED_UNITS = [
  'systemd-udevd.service',
  'systemd-udevd-control.socket',
  'systemd-udevd-kernel.socket',
  'systemd-modules-load.service',
  'systemd-binfmt.service',
  'proc-sys-fs-binfmt_misc.automount',
  'sys-kernel-config.mount',
  'sys-kernel-debug.mount',
  'sys-kernel-tracing.mount',
  'getty@tty1.service',
  'console-getty.service',
  'systemd-remount-fs.service',
] as const;

const Stamp = z.object({ packages: z.array(z.string()), buildSeconds: z.number() });
export type RootfsInfo = { dir: string; buildSeconds: number; cached: boolean };

/** The cache folder name changes with the package list, so an edit builds a new root filesystem. */
export function rootfsKey(
  packages: readonly string[] = ROOTFS_PACKAGES,
  masked: readonly string[] = MASKED_UNITS,
): string {
  const hash = createHash('sha256').update(JSON.stringify({ SUITE, packages, masked })).digest('hex').slice(0, 12);
  return `rootfs-${SUITE}-${hash}`;
}

function readStamp(dir: string): z.infer<typeof Stamp> | undefined {
  const file = join(dir, '.tw-rootfs.json');
  if (!existsSync(file)) return undefined;
  const parsed = Stamp.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.success ? parsed.data : undefined;
}

/** Builds (once; later calls reuse the cache) and returns the node root filesystem. Needs root and debootstrap. */
export async function nodeRootfs(log: (line: string) => void = () => {}): Promise<RootfsInfo> {
  const dir = join(cacheRoot(), 'e2e', rootfsKey());
  const hit = readStamp(dir);
  if (hit) return { dir, buildSeconds: hit.buildSeconds, cached: true };
  return withLock(`${dir}.lock`, 20 * 60_000, async () => {
    const again = readStamp(dir);
    if (again) return { dir, buildSeconds: again.buildSeconds, cached: true };
    const started = Date.now();
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    log(`e2e: debootstrap ${SUITE} (minbase + ${ROOTFS_PACKAGES.length} packages) into ${tmp}`);
    await run('debootstrap', ['--variant=minbase', `--include=${ROOTFS_PACKAGES.join(',')}`, SUITE, tmp, MIRROR]);
    await run('chroot', [tmp, 'systemctl', 'mask', ...MASKED_UNITS]);
    // Each node gets its own machine-id when it starts (systemd fills an empty one).
    writeFileSync(join(tmp, 'etc/machine-id'), '');
    await run('chroot', [tmp, 'apt-get', 'clean']);
    const buildSeconds = Math.round((Date.now() - started) / 100) / 10;
    writeFileSync(
      join(tmp, '.tw-rootfs.json'),
      `${JSON.stringify({ packages: [...ROOTFS_PACKAGES], buildSeconds })}\n`,
    );
    await run('mv', ['-T', tmp, dir]);
    log(`e2e: root filesystem built in ${buildSeconds} s: ${dir}`);
    return { dir, buildSeconds, cached: false };
  });
}
