// The air-gapped bundle's image plan and archive naming (scripts/lib/bundle/images.ts), on plain data
// and on this tree; building the images for real is test/e2e's part.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dockerfileBuilds, loadImagePins } from '../../scripts/build-images.mjs';
import {
  annotateIndex,
  archiveName,
  componentRecipes,
  dockerfileBases,
  isStaticElf,
  manifestImages,
  MANIFEST_FOLDERS,
  normalizeRef,
  overlayRef,
  planImages,
  type ImagePlan,
  type PlanInputs,
} from '../../scripts/lib/bundle/images.js';
import { debianSuite, standIns } from '../../scripts/lib/bundle/standins.js';
import { repoRoot } from '../harness/paths.js';

const pins = loadImagePins(repoRoot);
const ours = dockerfileBuilds(pins);
const BUSYBOX = 'docker.io/library/busybox:1.37.0';
const OVERLAY = 'apps/wiki-tokenizer/overlays/dev/kustomization.yaml';

/** An ELF64 header with one program header of the given type (3 = PT_INTERP: dynamically linked). */
function elf(programHeaderType: number): Buffer {
  const b = Buffer.alloc(64 + 56);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2;
  b.writeBigUInt64LE(64n, 0x20);
  b.writeUInt16LE(56, 0x36);
  b.writeUInt16LE(1, 0x38);
  b.writeUInt32LE(programHeaderType, 64);
  return b;
}

function inputs(over: Partial<PlanInputs> = {}): PlanInputs {
  return {
    ours,
    overlayFile: OVERLAY,
    overlayText: readFileSync(join(repoRoot, OVERLAY), 'utf8'),
    dockerfileText: (f) => readFileSync(join(repoRoot, f), 'utf8'),
    manifestRefs: new Map(),
    kubeadmImages: undefined,
    standIns: standIns('11.20.0'),
    recipes: componentRecipes(BUSYBOX),
    components: new Set(),
    dynamicComponents: new Set(),
    ...over,
  };
}

const byRef = (plans: ImagePlan[]): Map<string, ImagePlan> => new Map(plans.map((p) => [p.ref, p]));

describe('image names', () => {
  it.each([
    ['busybox:1.37.0', 'docker.io/library/busybox:1.37.0'],
    ['rancher/local-path-provisioner:v0.0.37', 'docker.io/rancher/local-path-provisioner:v0.0.37'],
    ['registry.k8s.io/pause:3.10.2', 'registry.k8s.io/pause:3.10.2'],
    ['localhost/tokenize-wiki/base-git:bookworm', 'localhost/tokenize-wiki/base-git:bookworm'],
    ['quay.io/kuberay/operator', 'quay.io/kuberay/operator:latest'],
  ])('%s is %s for containerd', (short, full) => {
    expect(normalizeRef(short)).toBe(full);
  });

  it('an archive is named after its image, one flat file name', () => {
    expect(archiveName('registry.k8s.io/coredns/coredns:v1.14.2')).toBe(
      'registry.k8s.io_coredns_coredns_v1.14.2.oci.tar',
    );
  });

  it('index.json gets the containerd image name and the OCI ref name on every manifest, keeping other annotations', () => {
    const index = JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: 'sha256:ab',
          size: 1,
          annotations: { keep: 'me' },
        },
      ],
    });
    const out = JSON.parse(annotateIndex(index, 'registry.k8s.io/pause:3.10.2')) as {
      manifests: { annotations: Record<string, string> }[];
    };
    expect(out.manifests[0]?.annotations).toEqual({
      keep: 'me',
      'io.containerd.image.name': 'registry.k8s.io/pause:3.10.2',
      'org.opencontainers.image.ref.name': 'registry.k8s.io/pause:3.10.2',
    });
    expect(() => annotateIndex('{"schemaVersion":2,"manifests":[]}', 'x:1', 'some/index.json')).toThrow(
      /some\/index.json/,
    );
  });

  it('a binary FROM scratch must be static: an ELF with a program interpreter is not', () => {
    expect(isStaticElf(elf(1))).toBe(true);
    expect(isStaticElf(elf(3))).toBe(false);
    expect(isStaticElf(Buffer.from('#!/bin/sh\n'))).toBe(false);
  });

  it('the node tag names its Debian suite', () => {
    expect(debianSuite(pins.nodeImage, 'node')).toBe('bookworm');
    expect(() => debianSuite('20.20.2-alpine', 'docker.io/library/node:20.20.2-alpine')).toThrow(
      /names no Debian suite/,
    );
  });
});

describe('the image plan', () => {
  it('the flannel image has every program the vendored kube-flannel.yml runs from it', () => {
    const recipe = componentRecipes('docker.io/library/busybox:1.37.0').find(
      (r) => r.repository === 'ghcr.io/flannel-io/flannel',
    );
    const provided = [
      ...(recipe?.files.map((f) => f.to) ?? []),
      ...(recipe?.setup ?? []).flatMap((l) => /> (\/\S+)$/.exec(l)?.[1] ?? []),
    ];
    const manifest = readFileSync(
      join(repoRoot, 'infrastructure/flannel/upstream/Documentation/kube-flannel.yml'),
      'utf8',
    );
    const commands = [...manifest.matchAll(/image: ghcr\.io\/flannel-io\/flannel:\S+\s+command:\s+- (\S+)/g)].map(
      (m) => m[1],
    );
    expect(commands.sort()).toEqual(['/opt/bin/flanneld', '/opt/bin/install-conf']);
    for (const c of commands) expect(provided).toContain(c);
  });

  it('the Dockerfiles need stand-ins for exactly the pinned node, ray and native-build Debian bases', () => {
    const bases = ours.flatMap((o) => dockerfileBases(readFileSync(join(repoRoot, o.dockerfile), 'utf8'), o.buildArgs));
    expect(new Set(bases)).toEqual(
      new Set([
        `docker.io/library/node:${pins.nodeImage}`,
        `docker.io/rayproject/ray:${pins.ray}-py${pins.python.replace('.', '')}`,
        `docker.io/library/debian:${pins.nativeBuildImage}`,
      ]),
    );
    const repositories = new Set(standIns('11.20.0').map((s) => s.repository));
    for (const base of bases) expect(repositories).toContain(base.replace(/:[^/:]+$/, ''));
  });

  it('our two images take the names the overlay gives them', () => {
    const text = readFileSync(join(repoRoot, OVERLAY), 'utf8');
    expect(overlayRef(text, 'tokenize-wiki', OVERLAY)).toMatch(/^docker\.io\/.+\/tokenize-wiki:.+$/);
    expect(() => overlayRef('images: []\n', 'tokenize-wiki', 'k.yaml')).toThrow(
      /k\.yaml: images: no entry .* tokenize-wiki/,
    );
  });

  it('the tree names busybox for local-path (inside a ConfigMap), KubeRay through its kustomization, no image without a tag', () => {
    const refs = manifestImages(repoRoot, MANIFEST_FOLDERS);
    expect(refs.get(BUSYBOX)).toContain('infrastructure/local-path/helper-pod.yaml');
    const kuberay = parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { kuberay: string };
    expect(refs.get(`quay.io/kuberay/operator:${kuberay.kuberay}`)).toBeDefined();
    for (const ref of refs.keys()) expect(ref).toMatch(/:[^/]+$/);
  });

  it("only the chosen overlay's tags of our images are built", () => {
    const plans = planImages(
      inputs({
        manifestRefs: new Map([
          ['docker.io/tokenizewiki/tokenize-wiki:prod', ['apps/wiki-tokenizer/overlays/prod/kustomization.yaml']],
        ]),
      }),
    );
    expect(plans.map((p) => p.ref)).not.toContain('docker.io/tokenizewiki/tokenize-wiki:prod');
    expect(plans.filter((p) => p.kind === 'dockerfile')).toHaveLength(2);
  });

  it('stand-ins first, then our Dockerfile images, then component images on their bases; the rest is named as missing', () => {
    const plans = planImages(
      inputs({
        manifestRefs: new Map([
          [BUSYBOX, ['infrastructure/local-path/helper-pod.yaml']],
          ['ghcr.io/flannel-io/flannel:v0.28.10', ['infrastructure/flannel/upstream.yaml']],
          ['docker.io/chrislusf/seaweedfs:4.53', ['infrastructure/object-store/statefulset.yaml']],
          ['docker.io/grafana/alloy:v1.19.2', ['infrastructure/logging/deployment.yaml']],
          ['quay.io/kuberay/operator:v1.6.2', ['infrastructure/kuberay/upstream.yaml']],
        ]),
        kubeadmImages: ['registry.k8s.io/kube-apiserver:v1.36.3', 'registry.k8s.io/pause:3.10.2'],
        components: new Set(['flanneld', 'pause', 'kuberay-operator']),
        dynamicComponents: new Set(['flanneld', 'kuberay-operator']),
      }),
    );
    const kinds = plans.map((p) => p.kind);
    // Build order: every stand-in before anything built on it, missing ones last.
    expect(kinds.lastIndexOf('standin')).toBeLessThan(kinds.indexOf('dockerfile'));
    expect(kinds.lastIndexOf('dockerfile')).toBeLessThan(kinds.indexOf('component'));
    expect(kinds.slice(kinds.indexOf('missing')).every((k) => k === 'missing')).toBe(true);
    const m = byRef(plans);
    expect(m.get('localhost/tokenize-wiki/base-iptables:bookworm')?.usedBy).toEqual([
      'base of ghcr.io/flannel-io/flannel',
    ]);
    expect(m.get('ghcr.io/flannel-io/flannel:v0.28.10')?.kind).toBe('component');
    expect(m.get('registry.k8s.io/pause:3.10.2')?.kind).toBe('component');
    expect(m.get(BUSYBOX)?.kind).toBe('standin');
    const missing = (ref: string): string => {
      const p = m.get(ref);
      return p?.kind === 'missing' ? p.reason : `not missing: ${p?.kind}`;
    };
    expect(missing('registry.k8s.io/kube-apiserver:v1.36.3')).toBe(
      'missing input: components/kube-apiserver not built yet',
    );
    expect(missing('docker.io/chrislusf/seaweedfs:4.53')).toBe('missing input: components/weed not built yet');
    expect(missing('docker.io/grafana/alloy:v1.19.2')).toBe('no recipe for this image');
    // flanneld runs on a Debian base (glibc); the operator FROM scratch must be static.
    expect(missing('quay.io/kuberay/operator:v1.6.2')).toMatch(
      /components\/kuberay-operator: dynamically linked, but FROM scratch/,
    );
    expect(missing('quay.io/argoproj/argocd:*')).toMatch(/no manifest in the tree names this image/);
    // A base no buildable image needs is not built.
    expect(m.has('localhost/tokenize-wiki/base-git:bookworm')).toBe(false);
  });

  it('without kubeadm the control-plane images are one clear missing input', () => {
    const p = byRef(planImages(inputs())).get('registry.k8s.io/*');
    expect(p?.kind === 'missing' && p.reason).toMatch(/bin\/kubeadm not built yet/);
  });
});
