// kubectl invocations for scripts that act on a cluster through the user's kubeconfig.
import type { Host } from './host.js';
import type { PreflightCheck } from './run.js';

export type Kubectl = (...args: string[]) => string[];

export function kubectlWith(kubeconfig: string | undefined): Kubectl {
  return (...args) => ['kubectl', ...(kubeconfig ? [`--kubeconfig=${kubeconfig}`] : []), ...args];
}

/** Runs a read-only kubectl query and parses its JSON output; undefined when it fails. */
export async function kubeJson<T>(host: Host, argv: string[]): Promise<T | undefined> {
  const r = await host.probe(argv);
  if (r.exitCode !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    return undefined;
  }
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface NodeList {
  items: { metadata: { name: string }; status?: { conditions?: Condition[] } }[];
}

export function readyNodes(list: NodeList): string[] {
  return list.items
    .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((n) => n.metadata.name);
}

/** Preflight: kubectl works and the API server answers. */
export function apiReachableCheck(kubectl: Kubectl): PreflightCheck {
  return {
    name: 'api-server',
    async run(host) {
      const r = await host.probe(kubectl('--request-timeout=10s', 'get', '--raw=/readyz'));
      return r.exitCode === 0
        ? { ok: true, detail: 'API server ready' }
        : {
            ok: false,
            detail: `kubectl cannot reach a ready API server: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? ''}`,
          };
    },
  };
}
