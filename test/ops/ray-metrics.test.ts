// Every ray_* series the alert rules and the dashboard select exists, with the labels and values they match on,
// in a real scrape of the harness's Ray head (the pinned Ray): its metrics port is the one the dashboard reports.
import { describe, expect, it } from 'vitest';
import { rayConnection } from '../harness/ray-env.js';
import { rayRequest } from '../harness/ray.js';
import { waitFor } from '../harness/proc.js';
import { allQueries, parseExposition, queryProblems, type Series } from './monitoring.js';

/** The node metrics appear once the dashboard agent has reported; the first scrape after start may lack them. */
async function rayScrape(): Promise<Series> {
  const { dashboardUrl } = rayConnection();
  const nodes = await rayRequest(dashboardUrl, 'GET', '/nodes?view=summary');
  const port = /"metricsExportPort":(\d+)/.exec(JSON.stringify(nodes.json))?.[1];
  if (port === undefined)
    throw new Error(
      `${dashboardUrl}/nodes?view=summary: no metricsExportPort in ${JSON.stringify(nodes.json).slice(0, 300)}`,
    );
  return waitFor(`Ray node metrics on 127.0.0.1:${port}`, 120_000, async () => {
    const series = parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    return series.has('ray_node_cpu_utilization') && series.has('ray_object_store_memory') ? series : undefined;
  });
}

describe('monitoring: Ray metrics', () => {
  it('every ray_* series of the alerts and the dashboard is one the Ray head exports, with those labels and values', async () => {
    const ray = await rayScrape();
    const queries = allQueries();
    const used = queries.filter((q) => q.expr.includes('ray_'));
    expect(used.length).toBeGreaterThan(4);
    expect(queryProblems(used, ray, (metric) => metric.startsWith('ray_'))).toEqual([]);
  }, 180_000);
});
