import type { z } from 'zod';
import { InputError } from './errors.js';

/**
 * Parse external input with a zod schema and turn its issues into one message a person can act on:
 * every problem names the source and the key path, e.g. `run.yaml: backend.dashboard_url: Invalid URL`.
 */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, source: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    return `${path}: ${issue.message}`;
  });
  throw new InputError(`${source}: ${problems.join('; ')}`);
}

/** JSON.parse that names the source on failure instead of throwing a bare SyntaxError. */
export function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError(`${source}: not valid JSON (${(error as Error).message})`);
  }
}
