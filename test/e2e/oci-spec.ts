// The runc configuration of a node: a system container in kind's manner (systemd as PID 1, privileged, its own
// cgroup namespace with a writable cgroup mount) that runs containerd and kubelet the way a VM would.
// Pure: built from plain data, so a test can read what a node is given.

/** Linux capability numbers 0..40 (linux/capability.h), in the names runc takes. */
const CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
].map((c) => `CAP_${c}`);

/**
 * The capabilities of the bounding set in /proc/self/status (`CapBnd: 000001fffeffffff`), minus
 * CAP_SYS_RESOURCE: this host's set lacks it, and a node must not raise limits the host holds down.
 */
export function nodeCapabilities(procStatus: string): string[] {
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(procStatus)?.[1];
  if (!hex) throw new Error('no CapBnd line in /proc/self/status');
  const mask = BigInt(`0x${hex}`);
  return CAPABILITIES.filter((name, bit) => (mask >> BigInt(bit)) & 1n && name !== 'CAP_SYS_RESOURCE');
}

export interface BindMount {
  source: string;
  destination: string;
  readonly?: boolean;
}

export interface NodeSpecInput {
  hostname: string;
  /** The node's merged root (an overlay of the cached root filesystem). */
  rootfs: string;
  /** A named network namespace (/run/netns/NAME) the node joins. */
  netnsPath: string;
  /** cgroupfs path of the node under each host hierarchy. */
  cgroupsPath: string;
  capabilities: string[];
  binds: BindMount[];
}

interface Mount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

const tmpfs = (destination: string, size: string): Mount => ({
  destination,
  type: 'tmpfs',
  source: 'tmpfs',
  options: ['nosuid', 'nodev', 'mode=755', `size=${size}`],
});

/** An OCI runtime spec (1.0.2, what Debian 12's runc reads) for one node. */
export function nodeSpec(input: NodeSpecInput): Record<string, unknown> {
  const bind = (b: BindMount): Mount => ({
    destination: b.destination,
    type: 'bind',
    source: b.source,
    options: ['rbind', b.readonly ? 'ro' : 'rw'],
  });
  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=256m'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // A fresh sysfs shows the node's own network devices (it has its own network namespace).
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'rw'] },
    // rw: systemd, then kubelet and containerd, create cgroups below the node's own (its cgroup namespace root).
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'rw'],
    },
    tmpfs('/run', '512m'),
    tmpfs('/run/lock', '16m'),
    { ...tmpfs('/tmp', '2g'), options: ['nosuid', 'nodev', 'mode=1777', 'size=2g'] },
    // kubelet reads the kernel log (OOM events); it is the host's, read through a bind mount as kind does.
    { destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['rbind', 'rw'] },
    ...input.binds.map(bind),
  ];
  const caps = input.capabilities;
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/sbin/init'],
      // systemd adapts to a container (skips units with ConditionVirtualization=!container) when this is set.
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'container=oci'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps },
      noNewPrivileges: false,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts,
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'cgroup' },
        { type: 'network', path: input.netnsPath },
      ],
      cgroupsPath: input.cgroupsPath,
      // Privileged: containers inside the node need any device the node may use.
      resources: { devices: [{ allow: true, access: 'rwm' }] },
      // kubelet needs a shared root for mount propagation into pods; mounts stay inside the node's namespace.
      rootfsPropagation: 'rshared',
      maskedPaths: [],
      readonlyPaths: [],
    },
  };
}
