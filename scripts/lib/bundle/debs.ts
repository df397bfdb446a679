// The Debian part of the air-gapped bundle: the packages a node needs beyond a minimal Debian 12 server, with
// their dependencies, downloaded on the build host into the bundle's debs/. apt runs against a throwaway state
// (its own sources, lists and an empty dpkg status), so the closure does not depend on what the build host
// happens to have installed, and the host's own apt state is left alone.
import { join } from 'node:path';
import type { Host } from '../host.js';
import type { Step } from '../run.js';

/**
 * What kubelet, containerd and the pod network need on a node (bootstrap-node --bundle installs them with dpkg):
 * the OCI runtime, the reference CNI plugins (Flannel delegates to bridge, portmap, host-local), and the
 * networking tools kubeadm and kube-proxy look for.
 */
export const NODE_DEBS = ['runc', 'containernetworking-plugins', 'iptables', 'conntrack', 'socat', 'ethtool'] as const;

/** The release nodes run (the e2e root filesystem and the docs' minimal VM). */
export const DEBIAN = {
  suite: 'bookworm',
  mirror: 'http://deb.debian.org/debian',
  security: 'http://deb.debian.org/debian-security',
} as const;
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export function sourcesList(): string {
  const line = (uri: string, suite: string): string => `deb [signed-by=${KEYRING}] ${uri} ${suite} main\n`;
  return (
    line(DEBIAN.mirror, DEBIAN.suite) +
    line(DEBIAN.mirror, `${DEBIAN.suite}-updates`) +
    line(DEBIAN.security, `${DEBIAN.suite}-security`)
  );
}

/** apt options that point every piece of apt state into `state` and the downloads into `archives`. */
export function aptOptions(state: string, archives: string, arch: string): string[] {
  const o = (k: string, v: string): string[] => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', join(state, 'sources.list')),
    ...o('Dir::Etc::SourceParts', join(state, 'sources.list.d')),
    ...o('Dir::Etc::PreferencesParts', join(state, 'preferences.d')),
    ...o('Dir::State', join(state, 'lib')),
    ...o('Dir::State::status', join(state, 'status')),
    ...o('Dir::Cache', join(state, 'cache')),
    ...o('Dir::Cache::archives', archives),
    ...o('APT::Architecture', arch),
    ...o('APT::Architectures', arch),
    // The state folders belong to root; apt's _apt sandbox user could not write them.
    ...o('APT::Sandbox::User', 'root'),
  ];
}

export interface DebsStepOptions {
  /** The bundle folder; packages go to its debs/. */
  bundle: string;
  /** A scratch folder for apt's lists and status (kept between runs: `apt-get update` is then incremental). */
  work: string;
  /** Debian architecture, e.g. amd64. */
  arch: string;
}

const STAMP = '.packages';

/** The stamp records what was asked for; a changed NODE_DEBS list downloads again. */
export function debsStamp(arch: string): string {
  return `${DEBIAN.suite} ${arch}: ${NODE_DEBS.join(' ')}\n`;
}

/** Step: debs/ holds NODE_DEBS and everything they depend on (against an empty system), for `dpkg -i`. */
export function debsStep(opts: DebsStepOptions): Step {
  const debs = join(opts.bundle, 'debs');
  const state = join(opts.work, 'apt');
  const apt = (...args: string[]): string[] => ['apt-get', ...aptOptions(state, debs, opts.arch), ...args];
  return {
    name: 'bundle-debs',
    goal: `${debs} holds ${NODE_DEBS.join(', ')} and their dependencies (Debian ${DEBIAN.suite}, ${opts.arch})`,
    check: async (host: Host) => (await host.readFile(join(debs, STAMP))) === debsStamp(opts.arch),
    async apply(host: Host) {
      await host.exec(['rm', '-rf', debs]);
      for (const d of [
        debs,
        join(debs, 'partial'),
        join(state, 'sources.list.d'),
        join(state, 'preferences.d'),
        join(state, 'lib', 'lists', 'partial'),
        join(state, 'cache'),
      ]) {
        await host.exec(['install', '-d', d]);
      }
      await host.writeFile(join(state, 'sources.list'), sourcesList());
      // An empty dpkg status: the download closure is every dependency, whatever the build host has installed.
      await host.writeFile(join(state, 'status'), '');
      await host.exec(apt('update', '-q'));
      await host.exec(apt('install', '-q', '-y', '--download-only', '--no-install-recommends', ...NODE_DEBS), {
        env: { DEBIAN_FRONTEND: 'noninteractive' },
      });
      await host.exec(['rm', '-rf', join(debs, 'partial'), join(debs, 'lock')]);
      await host.writeFile(join(debs, STAMP), debsStamp(opts.arch));
    },
  };
}
