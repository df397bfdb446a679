// The bundle's image archives (scripts/build-bundle.mts): each names its image the way containerd's
// import reads it, and our two images, taken from their archives alone, start `tokenize-wiki` as the
// image's own non-root user; where a containerd exists (the bundle's bin/, or the host's), an archive
// imported with `ctr -n k8s.io images import` runs under its manifest name, as on a node.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { archiveName, overlayRef } from '../../scripts/lib/bundle/images.js';
import { loadVersions } from '../../scripts/lib/versions.js';
import { cacheRoot, repoRoot } from '../harness/paths.js';

const run = promisify(execFile);
const bundleDir = join(cacheRoot(), 'bundle', loadVersions(repoRoot).kubernetes);
const imagesDir = join(bundleDir, 'images');
const archives = existsSync(imagesDir)
  ? readdirSync(imagesDir)
      .filter((f) => f.endsWith('.oci.tar'))
      .sort()
  : [];
const OVERLAY = 'apps/wiki-tokenizer/overlays/dev/kustomization.yaml';
const overlayText = readFileSync(join(repoRoot, OVERLAY), 'utf8');
const ours = [
  { ref: overlayRef(overlayText, 'tokenize-wiki', OVERLAY), user: 'ray' },
  { ref: overlayRef(overlayText, 'tokenize-wiki-submitter', OVERLAY), user: 'node' },
];

// `npm run e2e` builds the archives first (scripts/build-bundle.mts); run alone without them (vitest directly, or
// not as root), these suites say that they did not run, and why.
const missingArchives = ours.filter((o) => !archives.includes(archiveName(o.ref))).map((o) => o.ref);
if (missingArchives.length > 0) {
  process.stderr.write(
    `e2e: image suites NOT RUN: no archive in ${imagesDir} for ${missingArchives.join(', ')} (build it with \`node --import tsx scripts/build-bundle.mts\`)\n`,
  );
}

describe.skipIf(missingArchives.length > 0)('the bundle image archives', () => {
  it.each(archives)('%s names its image for `ctr images import`', async (file) => {
    const { stdout } = await run('tar', ['-xOf', join(imagesDir, file), 'index.json']);
    const index = JSON.parse(stdout) as { manifests: { annotations?: Record<string, string> }[] };
    expect(index.manifests).toHaveLength(1);
    const name = index.manifests[0]?.annotations?.['io.containerd.image.name'] ?? '';
    expect(archiveName(name)).toBe(file);
    expect(index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name']).toBe(name);
  });
});

describe.skipIf(missingArchives.length > 0)('our images, from their archives alone', () => {
  const root = mkdtempSync(join(tmpdir(), 'tw-images-'));
  const buildah = (args: string[]) =>
    run(
      'buildah',
      ['--root', join(root, 'storage'), '--runroot', join(root, 'run'), '--storage-driver', 'overlay', ...args],
      { maxBuffer: 16 << 20 },
    );
  afterAll(async () => {
    await buildah(['rm', '--all']).catch(() => undefined);
    await buildah(['rmi', '--all', '--force']).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  it.each(ours)('$ref runs `tokenize-wiki --help` as $user', async ({ ref, user }) => {
    const { stdout: ctr } = await buildah(['from', '--quiet', `oci-archive:${join(imagesDir, archiveName(ref))}`]);
    const name = ctr.trim();
    const { stdout: config } = await buildah(['inspect', '--format', '{{.OCIv1.Config.User}}', name]);
    expect(config.trim()).toBe(user);
    const { stdout: id } = await buildah(['run', '--isolation', 'chroot', name, '--', 'id', '-un']);
    expect(id.trim()).toBe(user);
    const { stdout, stderr } = await buildah(['run', '--isolation', 'chroot', name, '--', 'tokenize-wiki', '--help']);
    expect(stdout + stderr).toMatch(/run-tasks/);
  });
});

/** containerd and ctr from the bundle, else from PATH; undefined when neither has them. */
function containerdTools(): { containerd: string; ctr: string } | undefined {
  const inBundle = { containerd: join(bundleDir, 'bin/containerd'), ctr: join(bundleDir, 'bin/ctr') };
  if (existsSync(inBundle.containerd) && existsSync(inBundle.ctr)) return inBundle;
  const onPath = (name: string): string | undefined =>
    (process.env.PATH ?? '')
      .split(':')
      .map((d) => join(d, name))
      .find((f) => existsSync(f));
  const [containerd, ctr] = [onPath('containerd'), onPath('ctr')];
  return containerd && ctr ? { containerd, ctr } : undefined;
}

const tools = containerdTools();

describe.skipIf(!tools || missingArchives.length > 0)(
  'an archive imported into containerd (only where the bundle or PATH has containerd and ctr)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-containerd-'));
    const socket = join(dir, 'containerd.sock');
    let daemon: ChildProcess | undefined;
    const ctr = (args: string[]) =>
      run(tools?.ctr ?? 'ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], { maxBuffer: 16 << 20 });
    afterAll(async () => {
      daemon?.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 1000));
      await run('umount', ['-R', join(dir, 'root')]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });

    it('runs our submitter image under the name the overlay gives it', async () => {
      const config = join(dir, 'config.toml');
      // Its own root, state and socket: nothing of the host's containerd (if any) is touched.
      writeFileSync(
        config,
        `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${socket}"\n`,
      );
      // Its runc shim sits beside it (the bundle's bin/): containerd finds shims on PATH.
      const containerd = tools?.containerd ?? 'containerd';
      const env = { ...process.env, PATH: `${dirname(containerd)}:${process.env.PATH ?? ''}` };
      daemon = spawn(containerd, ['--config', config], { stdio: 'ignore', env });
      for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 200));
      const submitter = ours[1]?.ref ?? '';
      await ctr(['images', 'import', join(imagesDir, archiveName(submitter))]);
      const { stdout: names } = await ctr(['images', 'ls', '--quiet']);
      expect(names.split('\n')).toContain(submitter);
      const { stdout } = await ctr(['run', '--rm', submitter, `tw-images-${process.pid}`, 'tokenize-wiki', '--help']);
      expect(stdout).toMatch(/run-tasks/);
    });
  },
);
