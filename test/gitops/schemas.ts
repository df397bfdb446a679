// Offline schema validation of rendered objects.
//
// Core types: the OpenAPI v3 documents Kubernetes publishes in its own source tree
// (api/openapi-spec/v3), from the k8s.io/kubernetes Go module at the pinned Kubernetes version:
// the exact API of the cluster we deploy to, from the project that defines it. (The npm
// `kubernetes-models` packages were the alternative; their schemas trail Kubernetes by several
// minors.)
// Custom resources: each CRD's openAPIV3Schema, from the operators' pinned Go modules
// (test/kube/crds.ts, shared with the real-API-server suite).
//
// Kubernetes' OpenAPI leaves objects open (no additionalProperties: false), so a misspelt field
// would pass; like `kubectl --validate=strict`, we close every object that lists its properties
// and does not preserve unknown fields.
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { fetchCrds } from '../kube/crds.js';
import { goModule, loadPins, objectId, type K8sObject } from './gitops.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Returns a copy with every object schema that lists properties closed to other fields. */
export function closeSchemas(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(closeSchemas);
  if (!isObject(schema)) return schema;
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(schema)) {
    // Property names are data, not schemas: recurse into their values only.
    if (k === 'properties' && isObject(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, closeSchemas(s)]));
    } else {
      out[k] = closeSchemas(v);
    }
  }
  if (
    isObject(out.properties) &&
    out.additionalProperties === undefined &&
    out['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

/** CRD patterns are Go RE2 and may carry inline flags like `(?i)`, which JavaScript lacks. */
export function goRegExp(pattern: string, flags: string): RegExp {
  const caseless = pattern.includes('(?i)');
  return new RegExp(pattern.replaceAll('(?i)', ''), caseless && !flags.includes('i') ? `${flags}i` : flags);
}
goRegExp.code = 'goRegExp';

function newAjv(): Ajv {
  // strict: false because OpenAPI carries x-kubernetes-* keywords; formats (int32, date-time,
  // int-or-string) are Kubernetes' own and are checked by the API server, not here.
  return new Ajv({
    strict: false,
    allErrors: true,
    validateFormats: false,
    validateSchema: false,
    code: { regExp: goRegExp },
  });
}

export interface Validator {
  /** Every error of one object, as "path: message" lines; empty when valid. */
  validate(o: K8sObject): string[];
  /** apiVersion/kind pairs it knows. */
  known(): string[];
}

interface GvkEntry {
  fn: () => ValidateFunction;
  source: string;
}

const text = (v: Json | undefined): string => (typeof v === 'string' ? v : '');
const Gvk = (group: string, version: string, kind: string): string => `${group ? `${group}/` : ''}${version}/${kind}`;

function errorsOf(fn: ValidateFunction): string[] {
  return (fn.errors ?? []).map((e) => {
    const where = e.instancePath || '/';
    const extra =
      e.keyword === 'additionalProperties'
        ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})`
        : '';
    return `${where}: ${e.message ?? e.keyword}${extra}`;
  });
}

let cached: Promise<Validator> | undefined;

/** Loads (once per process) the core and CRD schemas of the pinned versions. */
export function loadValidator(): Promise<Validator> {
  cached ??= buildValidator();
  return cached;
}

async function buildValidator(): Promise<Validator> {
  const pins = loadPins();
  const ajv = newAjv();
  const byGvk = new Map<string, GvkEntry>();
  const lazy = (compile: () => ValidateFunction): (() => ValidateFunction) => {
    let fn: ValidateFunction | undefined;
    return () => (fn ??= compile());
  };

  // Core: one OpenAPI document per group/version; schemas carry x-kubernetes-group-version-kind.
  const k8s = await goModule('k8s.io/kubernetes', `v${pins.kubernetes}`);
  const specDir = path.join(k8s, 'api/openapi-spec/v3');
  for (const file of readdirSync(specDir).filter((f) => f.endsWith('_openapi.json'))) {
    const doc = JSON.parse(readFileSync(path.join(specDir, file), 'utf8')) as {
      components?: { schemas?: Record<string, Json> };
    };
    const schemas = doc.components?.schemas ?? {};
    const id = `k8s:${file}`;
    let added = false;
    for (const [name, schema] of Object.entries(schemas)) {
      const gvks = isObject(schema) ? schema['x-kubernetes-group-version-kind'] : undefined;
      if (!Array.isArray(gvks)) continue;
      for (const g of gvks) {
        if (!isObject(g)) continue;
        const key = Gvk(text(g.group), text(g.version), text(g.kind));
        if (byGvk.has(key) || key.endsWith('/List') || text(g.kind).endsWith('List')) continue;
        if (!added) {
          ajv.addSchema({ $id: id, components: { schemas: closeSchemas(schemas) } });
          added = true;
        }
        const ref = `${id}#/components/schemas/${name}`;
        byGvk.set(key, {
          source: `k8s.io/kubernetes@v${pins.kubernetes} ${file}`,
          fn: lazy(() => {
            const fn = ajv.getSchema(ref);
            if (!fn) throw new Error(`no schema ${ref}`);
            return fn;
          }),
        });
      }
    }
  }
  const objectMeta = byGvk.get('v1/Pod'); // ensures the core document with ObjectMeta is loaded
  if (!objectMeta) throw new Error(`k8s.io/kubernetes@v${pins.kubernetes}: no core/v1 schemas found in ${specDir}`);
  const metaRef = 'k8s:api__v1_openapi.json#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';

  // Custom resources.
  for (const doc of await fetchCrds()) {
    const { group, names } = doc.crd.spec;
    for (const v of doc.crd.spec.versions) {
      const schema = (v as { schema?: { openAPIV3Schema?: Json } }).schema?.openAPIV3Schema;
      if (!schema) continue;
      const key = Gvk(group, v.name, names.kind);
      const id = `crd:${key}`;
      byGvk.set(key, {
        source: `${doc.source}@${doc.version} ${doc.file}`,
        fn: lazy(() => ajv.compile({ ...(closeSchemas(schema) as object), $id: id })),
      });
    }
  }

  return {
    known: () => [...byGvk.keys()].sort(),
    validate(o) {
      const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
      const entry = byGvk.get(Gvk(group ?? '', version ?? '', o.kind));
      if (!entry)
        return [
          `${objectId(o)}: no schema for ${o.apiVersion} ${o.kind} (neither core Kubernetes v${pins.kubernetes} nor a pinned CRD)`,
        ];
      const errors: string[] = [];
      const fn = entry.fn();
      if (!fn(o)) errors.push(...errorsOf(fn));
      // A CRD's schema leaves metadata open; hold it to ObjectMeta like the API server does.
      if (!entry.source.startsWith('k8s.io/')) {
        const meta = ajv.getSchema(metaRef);
        if (!meta) throw new Error(`no schema ${metaRef}`);
        if (!meta(o.metadata)) errors.push(...errorsOf(meta).map((e) => `/metadata${e}`));
      }
      return errors.map((e) => `${objectId(o)} (${entry.source}): ${e}`);
    },
  };
}
