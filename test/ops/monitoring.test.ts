// The monitoring app (infrastructure/monitoring): alert rules and the Grafana dashboard parse as PromQL, and every
// tokenize_wiki_* and kube_* series they select exists, with the labels and label values they match on:
// tokenize_wiki_* from a real scrape of the submitter's metrics registry. Ray's series: ray-metrics.test.ts.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { METRIC_NAMES } from '../../src/runs/metrics.js';
import { render } from '../gitops/gitops.js';
import { repoRoot } from '../harness/paths.js';
import {
  allQueries,
  alertRules,
  dashboard,
  kubeSeries,
  queryProblems,
  selectorProblems,
  submitterSeries,
  type Series,
} from './monitoring.js';
import { parsePromql, type Selector } from './promql.js';

const notRay = (metric: string): boolean => !metric.startsWith('ray_');

async function known(): Promise<Series> {
  return new Map([...(await submitterSeries()), ...kubeSeries()]);
}

describe('monitoring: alert rules and dashboard queries', () => {
  it('every expression parses as PromQL, and every tokenize_wiki_* and kube_* series it selects exists', async () => {
    const queries = allQueries();
    expect(queries.length).toBeGreaterThan(20);
    expect(queryProblems(queries, await known(), notRay)).toEqual([]);
  });

  it('the check itself catches an unknown metric, a missing label, a wrong label value and a syntax error', async () => {
    const k = await known();
    const one = (expr: string): Selector => parsePromql(expr).selectors[0] as Selector;
    expect(selectorProblems(one('tokenize_wiki_tasks_total'), k)).toEqual([
      'tokenize_wiki_tasks_total is not exported by src/runs/metrics.ts',
    ]);
    expect(selectorProblems(one('tokenize_wiki_tasks{state="running"}'), k)[0]).toMatch(/selects nothing/);
    expect(selectorProblems(one('tokenize_wiki_docs{task_id="x"}'), k)).toEqual([
      'tokenize_wiki_docs has no label task_id',
    ]);
    expect(selectorProblems(one('kube_pod_status_phase'), k)[0]).toMatch(/not exported by kube-state-metrics/);
    expect(parsePromql('sum(rate(tokenize_wiki_docs[5m])').errors).not.toEqual([]);
  });

  it('the submitter scrape has exactly the names src/runs/metrics.ts declares', async () => {
    const base = new Set([...(await submitterSeries()).keys()].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect([...base].sort()).toEqual([...METRIC_NAMES].sort());
  });
});

describe('monitoring: alert rules', () => {
  const rules = alertRules();

  it('alert names are unique and every runbook link names a file of the repo', () => {
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of rules)
      expect(
        existsSync(path.join(repoRoot, r.annotations.runbook)),
        `${r.alert}: runbook ${r.annotations.runbook}`,
      ).toBe(true);
  });

  it('cover what a person must act on: stalls, failures, quarantine, reconcile, OOM kills and restarts', () => {
    const uses = (metric: string): string[] =>
      rules.filter((r) => parsePromql(r.expr).selectors.some((s) => s.metric === metric)).map((r) => r.alert);
    expect(uses('tokenize_wiki_docs')).toContain('TokenizeWikiRunStalled');
    expect(uses('tokenize_wiki_run_paused')).toContain('TokenizeWikiRunStalled');
    expect(uses('tokenize_wiki_failed_attempts')).toContain('TokenizeWikiFailureRatioHigh');
    expect(rules.find((r) => r.alert === 'TokenizeWikiTasksQuarantined')?.expr).toMatch(/state="quarantined"/);
    expect(uses('tokenize_wiki_last_successful_reconcile_timestamp_seconds')).toContain(
      'TokenizeWikiReconcileNotSucceeding',
    );
    expect(rules.find((r) => r.alert === 'RayContainerOOMKilled')?.expr).toMatch(/reason="OOMKilled"/);
    expect(uses('kube_pod_container_status_restarts_total')).toContain('RayPodRestarting');
  });
});

describe('monitoring: the Grafana dashboard', () => {
  it('shows run progress, throughput, failures and Ray CPU, memory and object store; panel ids are unique', () => {
    const d = dashboard();
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const metrics = new Set(
      allQueries()
        .filter((q) => !q.where.startsWith('alert'))
        .flatMap((q) => parsePromql(q.expr).selectors.map((s) => s.metric)),
    );
    for (const m of [
      'tokenize_wiki_docs',
      'tokenize_wiki_tasks',
      'tokenize_wiki_throughput_docs_per_second',
      'tokenize_wiki_failed_attempts',
      'tokenize_wiki_jobs_ended_total',
      'ray_node_cpu_utilization',
      'ray_node_mem_used',
      'ray_object_store_memory',
    ]) {
      expect(metrics.has(m), m).toBe(true);
    }
    expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'run_id']);
  });

  it('ships as a ConfigMap with the Grafana sidecar label, holding the same JSON', async () => {
    const cm = (await render('infrastructure/monitoring')).find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === 'tokenize-wiki-dashboard',
    );
    expect(cm?.metadata.labels?.grafana_dashboard).toBe('1');
    expect(cm?.metadata.namespace).toBe('tokenize-wiki');
    const data = z.record(z.string(), z.string()).parse(cm?.data);
    expect(JSON.parse(data['tokenize-wiki.json'] ?? '')).toEqual(
      JSON.parse(readFileSync(path.join(repoRoot, 'infrastructure/monitoring/dashboards/tokenize-wiki.json'), 'utf8')),
    );
  });
});
