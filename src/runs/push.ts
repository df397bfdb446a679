import { Pushgateway } from 'prom-client';
import { messageOf } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import type { SubmitterMetrics } from './metrics.js';

/** The Pushgateway group every `submit --once` replaces: one group, so a removed run's series go with the next push. */
export const PUSH_JOB = 'tokenize-wiki-submitter';

/**
 * Push the run metrics of a `submit --once` round (a CronJob tick lives too briefly to be scraped). A PUT replaces the
 * whole group, so the Pushgateway always holds the last round's levels. A failed push is logged, not fatal: the
 * tick's work is done, and the missing series are what the alerts then see.
 */
export async function pushRunMetrics(url: string, metrics: SubmitterMetrics, logger: Logger): Promise<boolean> {
  try {
    await new Pushgateway(url, { timeout: 10_000 }, metrics.registry).push({ jobName: PUSH_JOB });
    logger.info({ pushgateway: url }, 'run metrics pushed');
    return true;
  } catch (error) {
    logger.warn({ pushgateway: url, err: messageOf(error) }, 'could not push the run metrics to the Pushgateway');
    return false;
  }
}
