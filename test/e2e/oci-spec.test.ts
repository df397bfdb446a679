// What a node is given, read from its runc configuration, and the mount list teardown works from.
import { describe, expect, it } from 'vitest';
import { nodeCapabilities, nodeSpec } from './oci-spec.js';
import { mountsBelow } from './teardown.js';

describe('node runc spec', () => {
  const spec = nodeSpec({
    hostname: 'cp-1',
    rootfs: '/runs/a/nodes/cp-1/rootfs',
    netnsPath: '/run/netns/tw-e2e-a-cp-1',
    cgroupsPath: '/tw-e2e/tw-e2e-a-cp-1',
    capabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'],
    binds: [
      { source: '/runs/a/nodes/cp-1/containerd', destination: '/var/lib/containerd' },
      { source: '/repo', destination: '/opt/tokenize-wiki', readonly: true },
    ],
  }) as {
    process: { args: string[] };
    mounts: { destination: string; type: string; options: string[] }[];
    linux: { namespaces: { type: string; path?: string }[] };
  };

  it('boots systemd with tmpfs /run, /run/lock, /tmp, a writable cgroup mount and the kernel log', () => {
    expect(spec.process.args).toEqual(['/sbin/init']);
    const byDest = new Map(spec.mounts.map((m) => [m.destination, m]));
    for (const d of ['/run', '/run/lock', '/tmp']) expect(byDest.get(d)?.type).toBe('tmpfs');
    expect(byDest.get('/sys/fs/cgroup')?.options).toContain('rw');
    expect(byDest.get('/dev/kmsg')?.type).toBe('bind');
    expect(byDest.get('/opt/tokenize-wiki')?.options).toEqual(['rbind', 'ro']);
    expect(byDest.get('/var/lib/containerd')?.options).toEqual(['rbind', 'rw']);
  });

  it('joins the named network namespace and gets its own pid, mount and cgroup namespaces', () => {
    expect(spec.linux.namespaces).toContainEqual({ type: 'network', path: '/run/netns/tw-e2e-a-cp-1' });
    expect(spec.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount', 'cgroup', 'network']);
  });

  it("takes the host's bounding set without CAP_SYS_RESOURCE", () => {
    expect(nodeCapabilities('Name:\tnode\nCapBnd:\t000001ffffffffff\n')).toHaveLength(40);
    expect(nodeCapabilities('CapBnd:\t000001ffffffffff\n')).not.toContain('CAP_SYS_RESOURCE');
    expect(nodeCapabilities('CapBnd:\t0000000000200000\n')).toEqual(['CAP_SYS_ADMIN']);
    expect(() => nodeCapabilities('Name:\tx\n')).toThrow('no CapBnd line');
  });
});

describe('mountsBelow', () => {
  it('lists mount points at or below a folder, deepest first, with escaped spaces decoded', () => {
    const info = [
      '22 1 0:21 / /runs/a/nodes/cp-1/rootfs rw - overlay overlay rw',
      '23 22 0:22 / /runs/a/nodes/cp-1/rootfs/proc rw - proc proc rw',
      '24 1 0:23 / /runs/ab rw - tmpfs tmpfs rw',
      '25 1 0:24 / /runs/a/with\\040space rw - tmpfs tmpfs rw',
    ].join('\n');
    expect(mountsBelow(info, '/runs/a')).toEqual([
      '/runs/a/nodes/cp-1/rootfs/proc',
      '/runs/a/nodes/cp-1/rootfs',
      '/runs/a/with space',
    ]);
  });
});
