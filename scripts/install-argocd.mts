// Hands the cluster to Argo CD: installs argocd/install (server-side: v3's CRDs are too large for
// client-side apply), waits until it is ready, then applies argocd/root/<cluster> (projects + the
// root app), after which Argo CD syncs clusters/<cluster> and manages itself.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { main, runScript, type ScriptSpec } from './lib/cli.js';
import { UsageError } from './lib/errors.js';
import { apiReachableCheck, kubectlWith, kubeJson, readyNodes, type Kubectl, type NodeList } from './lib/kubectl.js';
import { requireCluster } from './lib/repo.js';
import { runPreflight, runSteps, type PreflightCheck, type ScriptIO, type Step } from './lib/run.js';
import { loadVersions } from './lib/versions.js';

const NS = 'argocd';

const options = {
  cluster: { type: 'string' },
  kubeconfig: { type: 'string' },
} as const;

const spec = {
  name: 'install-argocd',
  options,
  usage: `
Usage: node --import tsx scripts/install-argocd.mts --cluster NAME [--kubeconfig FILE] [--dry-run]

Installs Argo CD (argocd/install, the version pinned in versions.yaml) with server-side apply,
waits for its deployments and application controller, then applies argocd/root/NAME: the
AppProjects and the root Application that syncs clusters/NAME. Needs no root: it uses your
kubeconfig (the one init-control-plane.mts wrote), from any machine that reaches the API server.
Re-running is safe; an Argo CD at another version is upgraded to the pinned one, and a root app
that syncs another repository, revision or path than argocd/root/NAME/root.yaml is re-applied.

  --cluster NAME     a folder under argocd/root/ (prod, dev)
  --kubeconfig FILE  kubeconfig to use (default: kubectl's, i.e. $KUBECONFIG or ~/.kube/config)
  --dry-run          print the commands a real run would execute, change nothing
  -h, --help         this text

Exit codes: 0 done, 1 refused or a step failed, 2 bad usage.`,
} satisfies ScriptSpec<typeof options>;

const AppSource = z.object({ repoURL: z.string(), targetRevision: z.string().optional(), path: z.string().optional() });
export type AppSource = z.infer<typeof AppSource>;
const RootApp = z.object({
  kind: z.literal('Application'),
  metadata: z.object({ name: z.string() }),
  spec: z.object({ source: AppSource }),
});

/** The Application defined in argocd/root/<cluster>/ (the root app): its name and where it syncs from. */
export function rootApp(rootDir: string): { name: string; source: AppSource } {
  for (const file of readdirSync(rootDir)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(rootDir, file), 'utf8'))) {
      const parsed = RootApp.safeParse(doc.toJS());
      if (parsed.success) return { name: parsed.data.metadata.name, source: parsed.data.spec.source };
    }
  }
  throw new UsageError(`${rootDir}: no Application (root app) with spec.source found`);
}

/** What differs between the root app in the cluster and the one in Git (empty: nothing). */
export function sourceDiff(live: Partial<AppSource> | undefined, wanted: AppSource): string[] {
  if (!live) return ['absent'];
  return (['repoURL', 'targetRevision', 'path'] as const)
    .filter((k) => (live[k] ?? '') !== (wanted[k] ?? ''))
    .map((k) => `${k} ${live[k] ?? '(none)'} -> ${wanted[k] ?? '(none)'}`);
}

interface Workloads {
  items: {
    kind: string;
    metadata: { name: string };
    spec?: { replicas?: number };
    status?: { availableReplicas?: number; readyReplicas?: number };
  }[];
}

export function argocdSteps(opts: {
  kubectl: Kubectl;
  installDir: string;
  rootDir: string;
  root: { name: string; source: AppSource };
  argocd: string;
}): Step[] {
  const { kubectl, installDir, rootDir, root, argocd } = opts;
  return [
    {
      name: 'argocd-installed',
      goal: `Argo CD ${argocd} applied from argocd/install`,
      async check(host) {
        const r = await host.probe(
          kubectl(
            '--request-timeout=10s',
            '-n',
            NS,
            'get',
            'deployment',
            'argocd-server',
            '-o',
            'jsonpath={.spec.template.spec.containers[0].image}',
          ),
        );
        return r.exitCode === 0 && r.stdout.trim().endsWith(`:${argocd}`);
      },
      // --force-conflicts: once Argo CD manages itself its field manager owns these fields.
      apply: async (host) =>
        void (await host.exec(kubectl('apply', '--server-side', '--force-conflicts', '-k', installDir))),
    },
    {
      name: 'argocd-ready',
      goal: 'every Argo CD deployment available and the application controller ready',
      async check(host) {
        const list = await kubeJson<Workloads>(
          host,
          kubectl('--request-timeout=10s', '-n', NS, 'get', 'deployments,statefulsets', '-o', 'json'),
        );
        if (!list || list.items.length === 0) return false;
        return list.items.every((w) => {
          const want = w.spec?.replicas ?? 1;
          const have = w.kind === 'StatefulSet' ? w.status?.readyReplicas : w.status?.availableReplicas;
          return (have ?? 0) >= want;
        });
      },
      async apply(host) {
        await host.exec(
          kubectl('-n', NS, 'wait', '--for=condition=Available', 'deployment', '--all', '--timeout=600s'),
        );
        await host.exec(
          kubectl('-n', NS, 'rollout', 'status', 'statefulset/argocd-application-controller', '--timeout=600s'),
        );
      },
    },
    {
      name: 'root-app',
      goal: `root Application ${root.name} syncing ${root.source.repoURL} at ${root.source.targetRevision ?? 'HEAD'}, and the AppProjects, applied from ${rootDir}`,
      // Present is not enough: a root app that follows another repository or revision (a corrected
      // fork URL, prod's release branch) would never read the commit that fixes it.
      async check(host) {
        const live = await kubeJson<{ spec?: { source?: Partial<AppSource> } }>(
          host,
          kubectl('--request-timeout=10s', '-n', NS, 'get', 'applications.argoproj.io', root.name, '-o', 'json'),
        );
        return sourceDiff(live?.spec?.source, root.source).length === 0;
      },
      // Client-side apply, like Argo CD's own sync of clusters/<name>, so it adopts these with no diff.
      apply: async (host) => void (await host.exec(kubectl('apply', '-k', rootDir))),
    },
  ];
}

export function installArgocd(argv: readonly string[], io: ScriptIO): Promise<number> {
  return runScript(spec, argv, io, async (flags, { host, log, out }) => {
    const rootDir = requireCluster(io.repoRoot, flags.cluster, 'argocd/root', 'kustomization.yaml');
    const cluster = flags.cluster ?? '';
    const versions = loadVersions(io.repoRoot);
    const root = rootApp(rootDir);
    const kubectl = kubectlWith(flags.kubeconfig);
    const installDir = join(io.repoRoot, 'argocd', 'install');
    log.info(
      `cluster ${cluster}, Argo CD ${versions.argocd}, root app ${root.name} (${root.source.repoURL} at ${root.source.targetRevision ?? 'HEAD'})`,
    );
    const checks: PreflightCheck[] = [
      {
        name: 'kubectl',
        async run(h) {
          const r = await h.probe(kubectl('version', '--client'));
          return r.exitCode === 0
            ? { ok: true, detail: r.stdout.trim().split('\n')[0] ?? 'kubectl' }
            : { ok: false, detail: 'kubectl not found' };
        },
      },
      apiReachableCheck(kubectl),
      {
        name: 'nodes-ready',
        async run(h) {
          const nodes = await kubeJson<NodeList>(h, kubectl('--request-timeout=10s', 'get', 'nodes', '-o', 'json'));
          const ready = nodes ? readyNodes(nodes) : [];
          return ready.length > 0
            ? { ok: true, detail: `${ready.length} Ready node(s)` }
            : { ok: false, detail: 'no Ready node: run init-control-plane.mts first (the pod network must be up)' };
        },
      },
    ];
    const preflightOk = await runPreflight(checks, host, log, out);
    await runSteps(argocdSteps({ kubectl, installDir, rootDir, root, argocd: versions.argocd }), host, log, out);
    const k = kubectl().join(' ');
    const lines = [
      `Argo CD now syncs clusters/${cluster}. Follow it with: ${k} -n ${NS} get applications.argoproj.io`,
      `Open the UI: ${k} -n ${NS} port-forward svc/argocd-server 8080:443, then https://localhost:8080 (user admin)`,
      `Initial admin password: Secret ${NS}/argocd-initial-admin-secret, key "password":`,
      `  ${k} -n ${NS} get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d`,
      'Change it after the first login, then delete that Secret.',
    ];
    for (const line of lines) out(host.dryRun ? `# ${line}` : line);
    return preflightOk ? 0 : 1;
  });
}

await main(import.meta.url, installArgocd);
