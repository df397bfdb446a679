// Builds the air-gapped bundle on a host that reaches the package registries: node binaries, component
// binaries for the images, and bundle.json. Every part is cached and stamped, so an interrupted build
// resumes where it stopped and a second run only checks.
import { join } from 'node:path';
import { main, runScript, type ScriptSpec } from './lib/cli.js';
import { RefusalError, UsageError } from './lib/errors.js';
import { dockerfileBuilds, loadImagePins } from './build-images.mjs';
import { debsStep } from './lib/bundle/debs.js';
import { buildBundleImages } from './lib/bundle/images.js';
import {
  bundleDir,
  cacheRoot,
  componentBuilds,
  copyStep,
  goBuildStep,
  kubernetesBuilds,
  pauseStep,
  readFlannelCniImageTag,
  readKubernetesFacts,
  seaweedBuild,
  seaweedRoot,
} from './lib/bundle/go-builds.js';
import { buildStamps, manifestStep } from './lib/bundle/manifest.js';
import { formatMs, runSteps, type ScriptIO, type Step } from './lib/run.js';
import { loadVersions } from './lib/versions.js';

const spec = {
  name: 'build-bundle',
  options: { out: { type: 'string' }, cache: { type: 'string' }, overlay: { type: 'string' } },
  usage: `
Usage: node --import tsx scripts/build-bundle.mts [--out DIR] [--cache DIR] [--overlay NAME] [--dry-run]

Builds everything a node needs to install Kubernetes without internet access, at the versions in
versions.yaml, from the Go module proxy:
  bin/         kubelet kubeadm kubectl containerd containerd-shim-runc-v2 ctr crictl
  components/  binaries for the images: kube-apiserver kube-controller-manager kube-scheduler
               kube-proxy etcd coredns pause flanneld flannel (CNI plugin) local-path-provisioner
               kuberay-operator weed kustomize argocd
  debs/        the Debian packages a node needs beyond a minimal Debian 12 (runc, CNI plugins, iptables, ...)
  images/      *.oci.tar: every container image the cluster runs, named as the manifests and kubeadm
               name them (import on a node: ctr -n k8s.io images import FILE); images whose inputs
               are not built yet are listed as missing
  bundle.json  versions, image tags kubeadm expects, build times, every file with its sha256
Each build is stamped (DIR/build/NAME.json) and locked, so re-running resumes or only checks.
The first run takes a long time (Kubernetes alone compiles for many minutes on two cores).

  --out DIR        bundle folder (default: <cache>/bundle/<kubernetes version>)
  --cache DIR      cache folder (default: $TW_CACHE_DIR or ~/.cache/tokenize-wiki)
  --overlay NAME   the wiki-tokenizer overlay whose images: names our two images (default: dev)
  --dry-run        print the commands a real run would execute, change nothing
  -h, --help       this text

Run as root: buildah builds rootful images here.

Exit codes: 0 done, 1 a build failed, 2 bad usage.`,
} satisfies ScriptSpec<{ out: { type: 'string' }; cache: { type: 'string' }; overlay: { type: 'string' } }>;

export function buildBundle(argv: readonly string[], io: ScriptIO): Promise<number> {
  return runScript(spec, argv, io, async (flags, { host, log, out }) => {
    if (!host.dryRun && host.uid() !== 0) throw new RefusalError('run as root: buildah builds rootful images here');
    const versions = loadVersions(io.repoRoot);
    const cache = flags.cache ?? cacheRoot(io.env);
    const bundle = flags.out ?? bundleDir(cache, versions.kubernetes);
    if (flags.out === '') throw new UsageError('--out: empty folder name');
    const facts = await readKubernetesFacts(host, versions.kubernetes);
    const pins = { ...versions };
    const say = (line: string) => log.info(line);
    const weed = seaweedBuild(versions.seaweedfs);
    const weedRoot = seaweedRoot(cache, versions.seaweedfs);
    const steps: Step[] = [
      ...kubernetesBuilds(pins, facts).map((b) => goBuildStep(b, bundle, { log: say })),
      pauseStep(versions.kubernetes, facts.pause, bundle),
      ...componentBuilds(pins, facts).map((b) => goBuildStep(b, bundle, { log: say })),
      goBuildStep(weed, weedRoot, { log: say }),
      copyStep('weed', join(weedRoot, 'weed'), join(bundle, 'components', 'weed')),
      debsStep({ bundle, work: join(cache, 'bundle', 'work'), arch: 'amd64' }),
    ];
    const outcomes = await runSteps(steps, host, log, out);
    // Images wrap the component binaries built above (scripts/lib/bundle/images.ts).
    const { images } = await buildBundleImages({
      host,
      log,
      out,
      repoRoot: io.repoRoot,
      dirs: { bundle, work: join(cache, 'bundle', 'work') },
      overlay: flags.overlay ?? 'dev',
      ours: dockerfileBuilds(loadImagePins(io.repoRoot)),
    });
    // Last, so that it lists what the other parts (debs, images) put into the bundle too.
    const manifest = manifestStep(bundle, {
      kubernetes: versions.kubernetes,
      buildRoots: [weedRoot],
      images,
      versions: {
        kubernetes: versions.kubernetes,
        containerd: versions.containerd,
        crictl: versions.crictl,
        flannel: versions.flannel,
        flannelCni: versions.flannelCni,
        flannelCniImage: await readFlannelCniImageTag(host, versions.flannel),
        localPath: versions.localPath,
        kuberay: versions.kuberay,
        argocd: versions.argocd,
        argocdGitopsEngine: versions.argocdGitopsEngine,
        seaweedfs: versions.seaweedfs,
        etcd: facts.etcd,
        etcdImage: facts.etcdImage,
        coredns: facts.coredns,
        pause: facts.pause,
        kustomize: facts.kustomize,
      },
    });
    outcomes.push(...(await runSteps([manifest], host, log, out)));
    const total = outcomes.reduce((s, o) => s + o.ms, 0);
    log.info(
      `bundle ${bundle}: ${outcomes.filter((o) => o.status === 'applied').length} of ${outcomes.length} steps applied in ${formatMs(total)}`,
    );
    if (!host.dryRun) {
      // What a cold cache costs: every build's own time, whichever run (or test harness) did it.
      const stamps = [...(await buildStamps(host, bundle)), ...(await buildStamps(host, weedRoot))];
      const seconds = stamps.reduce((s, b) => s + b.seconds, 0);
      log.info(
        `cold build time of this bundle: ${seconds} s over ${stamps.length} builds (${stamps.map((b) => `${b.name} ${b.seconds} s`).join(', ')})`,
      );
    }
  });
}

await main(import.meta.url, buildBundle);
