import { inject } from 'vitest';
import type { RayConnection } from './ray.js';

/**
 * The harness's shared Ray head. Calling this in a test file is also what makes the global setup start the head
 * (it scans the selected files for `rayConnection(`). Tests that restart or kill a head start their own with
 * `startRayHead()` from ./ray.js instead of disturbing the shared one.
 */
export function rayConnection(): RayConnection {
  const ray = inject('ray');
  if (ray === null) throw new Error('no Ray head: the harness started none (TW_TEST_RAY=0?)');
  return ray;
}
