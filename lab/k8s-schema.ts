/**
 * An offline schema check of Kubernetes manifests against the API types `@kubernetes/client-node`
 * ships (generated from the Kubernetes OpenAPI, v1.34 for client-node 1.4): each object's kind
 * and apiVersion name a model (`apps/v1` DaemonSet → V1DaemonSet), and the object is walked
 * against the models' attribute maps. A field the type does not have, a value of the wrong type
 * and a required field that is missing are each a problem naming its path
 * (`spec.template.spec.containers[0].imagePullPolicyy`). Required fields are those the models'
 * declarations (.d.ts) do not mark optional, which is the OpenAPI `required` list.
 *
 * kubectl cannot do this without a server (`--validate` and `--dry-run=client` both fetch the
 * OpenAPI or the discovery document), so this is what the manifest tests use.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';

interface Attribute {
  name: string;
  baseName: string;
  type: string;
  format: string;
}

interface Model {
  getAttributeTypeMap(): Attribute[];
}

const models = k8s as unknown as Record<string, Model | undefined>;
const modelsDir = join(dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node/package.json')), 'dist', 'gen', 'models');
const requiredCache = new Map<string, Set<string>>();

/**
 * The API group of each kind this check knows (the models do not say): a kind under another
 * group is refused, so `apiVersion: v1` on a DaemonSet is caught as kubectl would.
 */
export const KIND_GROUPS: Readonly<Record<string, string>> = {
  ServiceAccount: '',
  ConfigMap: '',
  Secret: '',
  Namespace: '',
  Service: '',
  Pod: '',
  Node: '',
  DaemonSet: 'apps',
  Deployment: 'apps',
  ClusterRole: 'rbac.authorization.k8s.io',
  ClusterRoleBinding: 'rbac.authorization.k8s.io',
  Role: 'rbac.authorization.k8s.io',
  RoleBinding: 'rbac.authorization.k8s.io',
  Lease: 'coordination.k8s.io',
  PriorityClass: 'scheduling.k8s.io',
};

/** The model of a kind at an apiVersion: `apps/v1` + `DaemonSet` → `V1DaemonSet`; undefined when client-node has none. */
export function modelName(apiVersion: string, kind: string): string | undefined {
  const version = apiVersion.includes('/') ? apiVersion.slice(apiVersion.indexOf('/') + 1) : apiVersion;
  const name = `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
  return typeof models[name]?.getAttributeTypeMap === 'function' ? name : undefined;
}

/** The fields a model requires, from its declaration file (`'name': string;` against `'name'?: string;`). */
function requiredFields(model: string): Set<string> {
  let set = requiredCache.get(model);
  if (set === undefined) {
    set = new Set();
    const text = readFileSync(join(modelsDir, `${model}.d.ts`), 'utf8');
    for (const m of text.matchAll(/^\s+'([^']+)'(\??):/gm)) if (m[2] === '') set.add(m[1]!);
    requiredCache.set(model, set);
  }
  return set;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  return Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Checks `value` against a type of the attribute maps; pushes each problem with its path. */
function walk(value: unknown, type: string, format: string, path: string, problems: string[]): void {
  const array = /^Array<(.+)>$/.exec(type);
  if (array !== null) {
    if (!Array.isArray(value)) problems.push(`${path}: expected an array, got ${describe(value)}`);
    else value.forEach((v, i) => walk(v, array[1]!, '', `${path}[${i}]`, problems));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map !== null) {
    if (!isObject(value)) problems.push(`${path}: expected an object (a map), got ${describe(value)}`);
    else for (const [k, v] of Object.entries(value)) walk(v, map[1]!, '', `${path}.${k}`, problems);
    return;
  }
  switch (type) {
    case 'any':
    case 'object':
      return;
    case 'string':
    case 'Date':
      if (typeof value !== 'string') problems.push(`${path}: expected a string, got ${describe(value)}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(`${path}: expected a boolean, got ${describe(value)}`);
      return;
    case 'number':
      if (typeof value !== 'number') problems.push(`${path}: expected a number, got ${describe(value)}`);
      else if ((format === 'int32' || format === 'int64') && !Number.isInteger(value)) problems.push(`${path}: expected an integer, got ${value}`);
      return;
    case 'IntOrString':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) problems.push(`${path}: expected an integer or a string, got ${describe(value)}`);
      return;
  }
  const model = models[type];
  if (model === undefined || typeof model.getAttributeTypeMap !== 'function') {
    problems.push(`${path}: no schema for type ${type} in @kubernetes/client-node`);
    return;
  }
  if (!isObject(value)) {
    problems.push(`${path}: expected an object (${type}), got ${describe(value)}`);
    return;
  }
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a]));
  for (const [key, v] of Object.entries(value)) {
    const a = attributes.get(key);
    if (a === undefined) problems.push(`${path}.${key}: unknown field (${type} has ${[...attributes.keys()].join(', ')})`);
    else walk(v, a.type, a.format, `${path}.${key}`, problems);
  }
  for (const name of requiredFields(type)) {
    const a = model.getAttributeTypeMap().find((x) => x.name === name);
    if (a !== undefined && value[a.baseName] === undefined) problems.push(`${path}.${a.baseName}: required field missing (${type})`);
  }
}

/**
 * The problems of one manifest object (empty when it is valid), each naming its path under
 * `where` (e.g. `deploy/04-daemonset.yaml DaemonSet weft`).
 */
export function manifestProblems(object: unknown, where = 'manifest'): string[] {
  if (!isObject(object)) return [`${where}: not an object`];
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return [`${where}: apiVersion and kind must be strings`];
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const expected = KIND_GROUPS[kind];
  if (expected === undefined) return [`${where}: kind ${kind} is not one this check knows (${Object.keys(KIND_GROUPS).join(', ')})`];
  if (group !== expected) return [`${where}: ${kind} is in the API group "${expected}", not "${group}" (apiVersion ${apiVersion})`];
  const model = modelName(apiVersion, kind);
  if (model === undefined) return [`${where}: no API type for ${kind} in ${apiVersion}`];
  const problems: string[] = [];
  walk(object, model, '', where, problems);
  return problems;
}
