import type { Backend } from '../run-file.js';
import { KubeRayBackend } from './kuberay.js';
import { RayJobsApiBackend } from './ray-jobs-api.js';
import type { JobBackend } from './backend.js';

export type { JobBackend, JobInfo, JobSpec, JobStatus } from './backend.js';
export { TERMINAL } from './backend.js';
export { RayJobsApiBackend, rayJobInfo } from './ray-jobs-api.js';
export {
  KubeRayBackend,
  rayJobObject,
  rayJobStatus,
  rayJobInfoOf,
  RAYJOB,
  LABELS,
  TASKS_ANNOTATION,
} from './kuberay.js';

export function backendFor(backend: Backend): JobBackend {
  return backend.kind === 'ray-jobs-api'
    ? new RayJobsApiBackend(backend.dashboard_url)
    : new KubeRayBackend({ namespace: backend.namespace, rayCluster: backend.ray_cluster });
}
