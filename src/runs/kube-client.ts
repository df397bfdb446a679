import type * as KubeClient from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';

type KubeModule = typeof KubeClient;
let kubeModule: Promise<KubeModule> | undefined;

/**
 * An API client of the Kubernetes client library, loaded on first use: importing the library takes about half
 * a second, which every command (run-tasks in each Ray job included) would otherwise pay at start-up.
 * `kubeConfig` is for tests; without it the default kubeconfig / in-cluster ServiceAccount is used.
 */
export function kubeApi<T>(make: (kube: KubeModule, config: KubeConfig) => T, kubeConfig?: KubeConfig): Promise<T> {
  kubeModule ??= import('@kubernetes/client-node');
  const api = kubeModule.then((kube) => {
    const config = kubeConfig ?? new kube.KubeConfig();
    if (!kubeConfig) config.loadFromDefault();
    return make(kube, config);
  });
  // Reported by the first call that awaits it, not as an unhandled rejection at construction.
  api.catch(() => {});
  return api;
}

/** The HTTP status of a failed API call (the library's ApiException carries it as a numeric `code`). */
export function httpStatusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}
