// bootstrap-node --bundle (air-gapped install) and --allow-cgroup-v1, and the defects a real node container
// exposed in the host checks that both install paths share.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { bootstrapNode, CNI_PLUGINS } from '../../scripts/bootstrap-node.mjs';
import { NODE_DEBS } from '../../scripts/lib/bundle/debs.js';
import { NODE_BINARIES, parseDebFileName, readNodeBundle, tarMember } from '../../scripts/lib/bundle/node-bundle.js';
import { captureIO, freshHost, planCommands, plannedSteps, type FakeHost } from './fake-host.js';
import { repoRoot } from '../harness/paths.js';

const k8s = (parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { kubernetes: string }).kubernetes;

const IMAGES = ['registry.k8s.io/pause:3.10.1', `registry.k8s.io/kube-apiserver:v${k8s}`];

/** An OCI archive holding only what the node reads: index.json with the image name. */
function ociArchive(file: string, name: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'tw-oci-'));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ digest: 'sha256:00', annotations: { 'io.containerd.image.name': name } }],
    }),
  );
  execFileSync('tar', ['-cf', file, '-C', dir, 'oci-layout', 'index.json']);
}

function makeBundle(opts: { skipBinary?: string; skipDeb?: string } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bundle-'));
  for (const d of ['bin', 'debs', 'images']) mkdirSync(join(dir, d));
  for (const b of NODE_BINARIES.filter((b) => b !== opts.skipBinary)) writeFileSync(join(dir, 'bin', b), 'ELF');
  const debs = [
    ...NODE_DEBS.filter((p) => p !== opts.skipDeb).map((p) => `${p}_1.0-1_amd64.deb`),
    'conntrack_1%3a1.4.7-1+b2_amd64.deb',
    'libc6_2.36-9_amd64.deb',
  ];
  for (const f of debs) writeFileSync(join(dir, 'debs', f), '');
  IMAGES.forEach((name, i) => ociArchive(join(dir, 'images', `image-${i}.oci.tar`), name));
  return dir;
}

function bundleHost(bundle: string): FakeHost {
  const host = freshHost();
  host.packages.set('libc6', '2.36-9+deb12u14'); // a minimal Debian has libc6: it is kept
  host.kube.push({ match: [`${bundle}/bin/kubeadm`, 'version'], result: { stdout: `v${k8s}\n` } });
  host.kube.push({ match: ['/usr/local/bin/kubelet', '--version'], result: { stdout: `Kubernetes v${k8s}\n` } });
  return host;
}

async function run(host: FakeHost, ...argv: string[]) {
  const { io, captured } = captureIO(host);
  const code = await bootstrapNode(argv, io);
  return { code, ...captured };
}

const BUNDLE_STEPS = [
  'swap-off',
  'swap-off-fstab',
  'kernel-modules-persisted',
  'kernel-modules-loaded',
  'sysctl-persisted',
  'sysctl-applied',
  'bundle-packages',
  'bundle-binaries',
  'cni-plugins',
  'systemd-units',
  'containerd-config',
  'containerd-running',
  'bundle-images',
  'kubelet-enabled',
];

describe('bootstrap-node --bundle', () => {
  let bundle: string;
  beforeAll(() => {
    bundle = makeBundle();
  });

  it('plans an install from the bundle only: no apt repository, no download', async () => {
    const host = bundleHost(bundle);
    const r = await run(host, '--role', 'control-plane', '--bundle', bundle, '--dry-run');
    expect(r.code).toBe(0);
    expect(plannedSteps(r.out)).toEqual(BUNDLE_STEPS);
    const cmds = planCommands(r.out);
    expect(cmds.join('\n')).not.toMatch(/apt-get|curl|https?:\/\//);
    // Packages missing on the node go in with dpkg; those it has (libc6) are left as they are.
    const dpkg = cmds.find((c) => c.includes('dpkg -i')) ?? '';
    expect(dpkg).toContain(`${bundle}/debs/runc_1.0-1_amd64.deb`);
    expect(dpkg).toContain(`${bundle}/debs/conntrack_1%3a1.4.7-1+b2_amd64.deb`);
    expect(dpkg).not.toContain('libc6');
    expect(cmds).toContain(
      `install -m 0755 -t /usr/local/bin ${NODE_BINARIES.map((b) => `${bundle}/bin/${b}`).join(' ')}`,
    );
    expect(cmds).toContain(`ln -sf ${CNI_PLUGINS.map((p) => `/usr/lib/cni/${p}`).join(' ')} /opt/cni/bin/`);
    for (const i of [0, 1])
      expect(cmds).toContain(
        `ctr -n k8s.io images import --label io.cri-containerd.pinned=pinned ${bundle}/images/image-${i}.oci.tar`,
      );
    // containerd's sandbox image is the bundle's pause image, not the tag containerd's default names.
    expect(cmds).toContain(
      `sed -E -i 's#^([[:space:]]*)sandbox = .*#\\1sandbox = '\\''registry.k8s.io/pause:3.10.1'\\''#' /etc/containerd/config.toml`,
    );
    expect(cmds).toContain('ExecStart=/usr/local/bin/containerd');
    expect(r.err.join('\n')).toContain(`preflight bundle-version: ok, bundle kubeadm v${k8s}`);
  });

  it('converges with exactly the planned commands; a second run changes nothing', async () => {
    const plan = await run(bundleHost(bundle), '--role', 'worker', '--bundle', bundle, '--dry-run');
    const host = bundleHost(bundle);
    const r = await run(host, '--role', 'worker', '--bundle', bundle);
    expect(r.code).toBe(0);
    expect(host.actions).toEqual(planCommands(plan.out));
    expect(host.images).toEqual(new Set(IMAGES));
    expect(host.pinned).toEqual(new Set(IMAGES));
    expect(host.files.get('/etc/containerd/config.toml')).toContain("sandbox = 'registry.k8s.io/pause:3.10.1'");
    host.actions = [];
    const again = await run(host, '--role', 'worker', '--bundle', bundle);
    expect(again.code).toBe(0);
    expect(host.actions).toEqual([]);
    expect(host.unknownProbes).toEqual([]);
  });

  it('knows an air-gapped cluster node by its kubelet binary: another version is an upgrade, refused', async () => {
    const host = bundleHost(bundle);
    expect((await run(host, '--role', 'worker', '--bundle', bundle)).code).toBe(0);
    host.files.set('/etc/kubernetes/kubelet.conf', 'kind: Config\n');
    host.kube.unshift({ match: ['/usr/local/bin/kubelet', '--version'], result: { stdout: 'Kubernetes v1.30.4\n' } });
    host.actions = [];
    const r = await run(host, '--role', 'worker', '--bundle', bundle);
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toContain(`not-an-upgrade: this cluster node runs kubelet 1.30.4, versions.yaml pins ${k8s}`);
    expect(host.actions).toEqual([]);
  });

  it('refuses a bundle of another Kubernetes release before changing anything', async () => {
    const host = freshHost();
    host.kube.push({ match: [`${bundle}/bin/kubeadm`, 'version'], result: { stdout: 'v1.30.4\n' } });
    const r = await run(host, '--role', 'worker', '--bundle', bundle);
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toContain(`bundle-version: bundle kubeadm v1.30.4, versions.yaml pins v${k8s}`);
    expect(host.actions).toEqual([]);
  });

  it("checks the files against bundle.json's sha256 when the bundle has one", async () => {
    const copy = makeBundle();
    const files = [
      ...NODE_BINARIES.map((b) => `bin/${b}`),
      ...readNodeBundle(copy).debs.map((d) => `debs/${d.file}`),
      'images/image-0.oci.tar',
      'images/image-1.oci.tar',
    ];
    const sha = (p: string) =>
      createHash('sha256')
        .update(readFileSync(join(copy, p)))
        .digest('hex');
    const manifest = (entries: string[]) =>
      JSON.stringify({ schema: 1, files: entries.map((path) => ({ path, sha256: sha(path), size: 0 })) });
    writeFileSync(join(copy, 'bundle.json'), manifest(files));
    const ok = await run(bundleHost(copy), '--role', 'worker', '--bundle', copy, '--dry-run');
    expect(ok.err.join('\n')).toContain(`preflight bundle-integrity: ok, ${files.length} files match bundle.json`);
    writeFileSync(join(copy, 'bin', 'kubelet'), 'ELF, cut short');
    const host = bundleHost(copy);
    const r = await run(host, '--role', 'worker', '--bundle', copy);
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toContain(
      'bundle-integrity: missing from bundle.json or sha256 differs: bin/kubelet (copy the bundle again)',
    );
    expect(host.actions).toEqual([]);
  });

  it('names everything a bundle lacks (exit 2)', async () => {
    const broken = makeBundle({ skipBinary: 'kubelet', skipDeb: 'runc' });
    writeFileSync(join(broken, 'images', 'bad.oci.tar'), '');
    const r = await run(freshHost(), '--role', 'worker', '--bundle', broken, '--dry-run');
    expect(r.code).toBe(2);
    const msg = r.err.at(-1) ?? '';
    expect(msg).toContain('bin/ lacks kubelet');
    expect(msg).toContain('debs/ lacks runc');
    expect(msg).toContain('bad.oci.tar: no index.json (not an OCI archive)');
    expect((await run(freshHost(), '--role', 'worker', '--bundle', '/nonexistent-tw-bundle')).err.at(-1)).toContain(
      '--bundle /nonexistent-tw-bundle: no such folder',
    );
  });

  it('takes the images from bundle.json: one listed but absent, or present but unlisted, is refused (exit 2)', async () => {
    const copy = makeBundle();
    const listed = IMAGES.map((name, i) => ({ name, file: `images/image-${i}.oci.tar` }));
    writeFileSync(
      join(copy, 'bundle.json'),
      JSON.stringify({
        schema: 1,
        files: [],
        images: [...listed, { name: 'quay.io/argoproj/argocd:v3.5.7', file: 'images/argocd.oci.tar' }],
      }),
    );
    const r = await run(freshHost(), '--role', 'worker', '--bundle', copy, '--dry-run');
    expect(r.code).toBe(2);
    expect(r.err.at(-1)).toContain(
      'bundle.json lists quay.io/argoproj/argocd:v3.5.7 but images/argocd.oci.tar is missing',
    );
    writeFileSync(join(copy, 'bundle.json'), JSON.stringify({ schema: 1, files: [], images: listed.slice(0, 1) }));
    const unlisted = await run(freshHost(), '--role', 'worker', '--bundle', copy, '--dry-run');
    expect(unlisted.code).toBe(2);
    expect(unlisted.err.at(-1)).toContain('bundle.json does not list images/image-1.oci.tar');
  });

  it('fails naming every image containerd lacks after the import (ctr exits 0 on an archive it cannot name)', async () => {
    const host = bundleHost(bundle);
    host.onExec = (argv) => (argv.includes('import') && argv.at(-1)?.endsWith('image-1.oci.tar') ? '' : undefined);
    const r = await run(host, '--role', 'worker', '--bundle', bundle);
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toContain(`containerd lacks ${IMAGES[1]} (images/image-1.oci.tar)`);
  });

  it("pins the images, so kubelet's image garbage collection never removes one the node cannot pull again", async () => {
    const host = bundleHost(bundle);
    // A node bootstrapped before the images were pinned: present, unpinned.
    for (const name of IMAGES) host.images.add(name);
    const r = await run(host, '--role', 'worker', '--bundle', bundle);
    expect(r.code).toBe(0);
    expect(host.actions.filter((a) => a.startsWith('ctr'))).toEqual(
      IMAGES.map((n) => `ctr -n k8s.io images label ${n} io.cri-containerd.pinned=pinned`),
    );
    expect(host.pinned).toEqual(new Set(IMAGES));
  });

  it('reads bundle file names and archive members', () => {
    expect(parseDebFileName('ethtool_1%3a6.1-1_amd64.deb')).toEqual({
      file: 'ethtool_1%3a6.1-1_amd64.deb',
      package: 'ethtool',
      version: '1:6.1-1',
      arch: 'amd64',
    });
    expect(parseDebFileName('notes.txt')).toBeUndefined();
    expect(readNodeBundle(bundle).images.map((i) => i.name)).toEqual(IMAGES);
    expect(tarMember(join(bundle, 'images', 'image-0.oci.tar'), 'oci-layout')?.toString()).toBe(
      '{"imageLayoutVersion":"1.0.0"}',
    );
    expect(tarMember(join(bundle, 'images', 'image-0.oci.tar'), 'missing.json')).toBeUndefined();
  });
});

describe('bootstrap-node --allow-cgroup-v1', () => {
  it('accepts a cgroup v1 host only when asked, and says so', async () => {
    const host = freshHost();
    host.cgroupFs = 'tmpfs';
    const refused = await run(host, '--role', 'worker');
    expect(refused.code).toBe(1);
    expect(refused.err.at(-1)).toContain('cgroup-v2: /sys/fs/cgroup is tmpfs, need cgroup2fs');
    const r = await run(host, '--role', 'worker', '--allow-cgroup-v1');
    expect(r.code).toBe(0);
    expect(r.err.join('\n')).toContain(
      'preflight cgroup-v2: ok, /sys/fs/cgroup is tmpfs: cgroup v1 accepted (--allow-cgroup-v1)',
    );
  });
});

describe('host checks found wrong on a real node', () => {
  it('restricts OOM score adjustments where root lacks CAP_SYS_RESOURCE (else runc fails every pod sandbox)', async () => {
    const host = freshHost();
    host.files.set('/proc/self/status', 'Name:\tnode\nCapEff:\t000001fffeffffff\n'); // bit 24 clear
    const r = await run(host, '--role', 'worker', '--allow-cgroup-v1');
    expect(r.code).toBe(0);
    expect(host.actions).toContain(
      "sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml",
    );
    expect(host.files.get('/etc/containerd/config.toml')).toContain('restrict_oom_score_adj = true');
    // A VM's root has the capability: the config stays containerd's default.
    const vm = freshHost();
    vm.files.set('/proc/self/status', 'Name:\tnode\nCapEff:\t000001ffffffffff\n');
    expect((await run(vm, '--role', 'worker')).code).toBe(0);
    expect(vm.files.get('/etc/containerd/config.toml')).toContain('restrict_oom_score_adj = false');
  });

  it('counts built-in modules as loaded (no /sys/module entry, no modules folder for modprobe)', async () => {
    const host = freshHost();
    // br_netfilter built in: its sysctls exist; overlay built in: listed in /proc/filesystems.
    host.files.set('/proc/filesystems', 'nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n');
    const r = await run(host, '--role', 'worker', '--dry-run');
    expect(plannedSteps(r.out)).not.toContain('kernel-modules-loaded');
    expect(planCommands(r.out).filter((c) => c.startsWith('modprobe'))).toEqual([]);
  });

  it('takes /etc/machine-id as the identity of a machine without DMI tables (microVMs, system containers)', async () => {
    const host = freshHost();
    host.files.delete('/sys/class/dmi/id/product_uuid');
    host.files.set('/etc/machine-id', '3f1c0e8a5b7d4e2f9a6c1b0d8e7f6a5b\n');
    const r = await run(host, '--role', 'worker', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.err.join('\n')).toContain('machine-id 3f1c0e8a5b7d4e2f9a6c1b0d8e7f6a5b');
    // With DMI present but product_uuid unreadable, a real run still refuses.
    host.files.set('/sys/class/dmi', '');
    const refused = await run(host, '--role', 'worker');
    expect(refused.err.at(-1)).toContain('identity: /sys/class/dmi/id/product_uuid is unreadable');
  });
});
