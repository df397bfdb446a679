// What the e2e nodes take of the host, and where each node's containerd goes: the nodes' disks are the host's, so
// a node's images count against the kubelet's image-filesystem eviction threshold of every node at once.
import { readFileSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { cacheRoot, repoRoot } from '../harness/paths.js';

/** What a node's containerd holds once the bundle's images are imported and unpacked (measured: 4.0 GiB each). */
export const NODE_IMAGES_BYTES = 4.5 * 2 ** 30;
/** A node's containerd on a tmpfs: room for its images. */
export const CONTAINERD_TMPFS_SIZE = '12g';
/** RAM the cluster's processes need beside the tmpfs holding images (the one-node suite: 16 GB with one tmpfs). */
export const CLUSTER_MEMORY_BYTES = 10 * 2 ** 30;

export interface HostRoom {
  /** Bytes of the host disk (under the cache) free for an unprivileged process, and its size. */
  diskFree: number;
  diskTotal: number;
  /** MemAvailable: free memory plus the page cache the kernel gives back on demand. */
  memoryAvailable: number;
}

export function hostRoom(): HostRoom {
  const fs = statfsSync(cacheRoot());
  const kB = /^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return { diskFree: fs.bavail * fs.bsize, diskTotal: fs.blocks * fs.bsize, memoryAvailable: Number(kB ?? 0) * 1024 };
}

/**
 * Where each of `nodes` nodes keeps its containerd: undefined for the host disk, a size for a tmpfs. Nodes stay on
 * the disk while it keeps 1% above the kubelet's image-filesystem threshold with their images in; the others get a
 * tmpfs while RAM holds their images and the cluster. When neither has room, the rest stay on the disk (the node
 * is then tainted disk-pressure, which the suites check and report).
 */
export function containerdPlacement(
  nodes: number,
  imagefsThresholdPercent: number,
  room: HostRoom,
): (string | undefined)[] {
  const placement: (string | undefined)[] = [];
  let disk = room.diskFree;
  let memory = room.memoryAvailable - CLUSTER_MEMORY_BYTES;
  for (let i = 0; i < nodes; i++) {
    const freeAfter = (100 * (disk - NODE_IMAGES_BYTES)) / room.diskTotal;
    if (freeAfter < imagefsThresholdPercent + 1 && memory >= NODE_IMAGES_BYTES) {
      memory -= NODE_IMAGES_BYTES;
      placement.push(CONTAINERD_TMPFS_SIZE);
    } else {
      disk -= NODE_IMAGES_BYTES;
      placement.push(undefined);
    }
  }
  return placement;
}

/**
 * The placement for this host, logged; TW_E2E_CONTAINERD_TMPFS=<size> puts every node's containerd on a tmpfs of
 * that size instead.
 */
export function chooseContainerdTmpfs(
  names: readonly string[],
  imagefsThresholdPercent: number,
  log: (line: string) => void,
): Record<string, string> {
  const forced = process.env.TW_E2E_CONTAINERD_TMPFS;
  const room = hostRoom();
  const placement = forced ? names.map(() => forced) : containerdPlacement(names.length, imagefsThresholdPercent, room);
  const tmpfs = Object.fromEntries(
    names.flatMap((n, i) => (placement[i] === undefined ? [] : [[n, placement[i]] as [string, string]])),
  );
  const gib = (b: number): string => (b / 2 ** 30).toFixed(1);
  if (Object.keys(tmpfs).length)
    log(
      `e2e: host disk ${gib(room.diskFree)} of ${gib(room.diskTotal)} GiB free, ${gib(room.memoryAvailable)} GiB RAM available, kubelet imagefs threshold ${imagefsThresholdPercent}%: containerd on a tmpfs for ${Object.entries(
        tmpfs,
      )
        .map(([n, s]) => `${n} (${s})`)
        .join(', ')}, on the disk for the others`,
    );
  return tmpfs;
}

/** A hard eviction threshold of a cluster's kubelet configuration (clusters/<name>/kubeadm-config.yaml), in per cent. */
export function evictionPercent(cluster: string, signal: string): number {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'clusters', cluster, 'kubeadm-config.yaml'), 'utf8')).map(
    (d) => d.toJS() as { kind?: string; evictionHard?: Record<string, string> },
  );
  const eviction = docs.find((d) => d.kind === 'KubeletConfiguration')?.evictionHard ?? {};
  return Number.parseFloat(eviction[signal] ?? '0');
}

/**
 * Why nodes would be tainted disk-pressure from the start: the host disk below a hard eviction threshold of the
 * cluster's kubelet (nodefs.available, and imagefs.available unless every node's containerd is on a tmpfs).
 */
export function diskPressureReason(cluster: string, allImagesOnTmpfs: boolean): string | undefined {
  const signals = ['nodefs.available', ...(allImagesOnTmpfs ? [] : ['imagefs.available'])];
  const threshold = Math.max(...signals.map((s) => evictionPercent(cluster, s)));
  const room = hostRoom();
  const free = (100 * room.diskFree) / room.diskTotal;
  return free < threshold
    ? `the host disk under ${cacheRoot()} has ${free.toFixed(1)}% free, below the kubelet eviction threshold ${threshold}% of clusters/${cluster}`
    : undefined;
}
