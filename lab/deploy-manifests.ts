/**
 * deploy/'s manifests as data, for the tests and the Kubernetes lab: the objects of each file
 * (`kubectl apply -f deploy/` applies them in file order), the conflist and settings of the
 * ConfigMap, and the router's `weft launch` arguments as the kubelet would give them on a node.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ConfigMap, V1Container, V1DaemonSet, V1PodSpec } from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import { packageRoot } from '../src/core/paths.js';
import { LabError } from './errors.js';

export type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1Container,
  V1DaemonSet,
  V1PodSpec,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1ServiceAccount,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';

export interface DeployManifest {
  /** Path relative to the package root: `deploy/04-daemonset.yaml`. */
  file: string;
  object: Record<string, unknown>;
}

/** The key of the ConfigMap that holds the conflist, and the file name it is installed as. */
export const CONFLIST_KEY = '00-weft.conflist';
export const CONFIGMAP_NAME = 'weft-config';
export const DAEMONSET_NAME = 'weft';

export function deployDir(): string {
  return join(packageRoot(import.meta.url), 'deploy');
}

/**
 * Every object of every `*.yaml` / `*.yml` / `*.json` file in `dir`, in the order kubectl applies
 * them, as the YAML says (js-yaml; not client-node's loadAllYaml, which turns each object into its
 * API type and so drops the fields the type does not have: the schema check would never see a
 * misspelt one).
 */
export function loadDeployManifests(dir = deployDir()): DeployManifest[] {
  const out: DeployManifest[] = [];
  for (const name of readdirSync(dir).filter((n) => /\.(ya?ml|json)$/.test(n)).sort()) {
    const file = `deploy/${name}`;
    let docs: unknown[];
    try {
      docs = loadAll(readFileSync(join(dir, name), 'utf8'));
    } catch (err) {
      throw new LabError(`${file} is not valid YAML: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    for (const d of docs) {
      if (d === null || d === undefined) continue;
      if (typeof d !== 'object' || Array.isArray(d)) throw new LabError(`${file} holds a document that is not an object`);
      out.push({ file, object: d as Record<string, unknown> });
    }
  }
  return out;
}

/**
 * The one object of `kind` named `name`, as the API type T the caller names (the objects are the
 * YAML as parsed: field names are the API's); a LabError when there is none or more than one.
 */
export function deployObject<T = Record<string, unknown>>(kind: string, name: string, manifests = loadDeployManifests()): T {
  const found = manifests.filter((m) => m.object.kind === kind && (m.object.metadata as { name?: unknown } | undefined)?.name === name);
  if (found.length !== 1) throw new LabError(`deploy/ holds ${found.length} ${kind} objects named ${name}, not one`);
  return found[0]!.object as T;
}

function configMapData(manifests: DeployManifest[]): Record<string, string> {
  const data = deployObject<V1ConfigMap>('ConfigMap', CONFIGMAP_NAME, manifests).data;
  if (data === undefined) throw new LabError(`the ConfigMap ${CONFIGMAP_NAME} has no data`);
  return data;
}

/** The conflist the DaemonSet installs on every node (the ConfigMap's `00-weft.conflist`), parsed. */
export function deployConflist(manifests = loadDeployManifests()): Record<string, unknown> {
  const text = configMapData(manifests)[CONFLIST_KEY];
  if (text === undefined) throw new LabError(`the ConfigMap ${CONFIGMAP_NAME} has no ${CONFLIST_KEY}`);
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new LabError(`the ConfigMap's ${CONFLIST_KEY} is not JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The router's settings in the ConfigMap (every key but the conflist): `{ 'ipam-range': '10.32.0.0/12', ... }`. */
export function deploySettings(manifests = loadDeployManifests()): Record<string, string> {
  const { [CONFLIST_KEY]: _conflist, ...rest } = configMapData(manifests);
  return rest;
}

/** The DaemonSet's pod spec (`spec.template.spec`). */
export function deployPodSpec(manifests = loadDeployManifests()): V1PodSpec {
  const spec = deployObject<V1DaemonSet>('DaemonSet', DAEMONSET_NAME, manifests).spec?.template.spec;
  if (spec === undefined) throw new LabError(`the DaemonSet ${DAEMONSET_NAME} has no pod spec`);
  return spec;
}

/** A container (or init container) of the DaemonSet's pod by name. */
export function deployContainer(name: string, manifests = loadDeployManifests()): V1Container {
  const spec = deployPodSpec(manifests);
  const c = [...spec.containers, ...(spec.initContainers ?? [])].find((x) => x.name === name);
  if (c === undefined) throw new LabError(`the DaemonSet has no container ${name}`);
  return c;
}

/** What the kubelet knows of the node a pod runs on: the fields the downward API gives. */
export interface PodFacts {
  nodeName: string;
  hostIP: string;
  /** Other fieldRef paths, e.g. `metadata.namespace`. */
  fields?: Record<string, string>;
}

/**
 * The environment of a container of the DaemonSet's pod on a node: `value`s, `fieldRef`s from
 * `facts` and `configMapKeyRef`s from deploy's ConfigMap. A reference it cannot resolve is a
 * LabError (the kubelet would not start the container either).
 */
export function deployContainerEnv(container: string, facts: PodFacts, manifests = loadDeployManifests()): Record<string, string> {
  const c = deployContainer(container, manifests);
  const fields: Record<string, string> = { 'spec.nodeName': facts.nodeName, 'status.hostIP': facts.hostIP, ...facts.fields };
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = expand(e.value, env);
    else if (e.valueFrom?.fieldRef !== undefined) {
      const v = fields[e.valueFrom.fieldRef.fieldPath];
      if (v === undefined) throw new LabError(`${container}: env ${e.name} names the field ${e.valueFrom.fieldRef.fieldPath}, which PodFacts does not give`);
      env[e.name] = v;
    } else if (e.valueFrom?.configMapKeyRef !== undefined) {
      const ref = e.valueFrom.configMapKeyRef;
      const data = deployObject<V1ConfigMap>('ConfigMap', ref.name ?? '', manifests).data ?? {};
      const v = data[ref.key];
      if (v === undefined) throw new LabError(`${container}: env ${e.name} names key ${ref.key} of ConfigMap ${ref.name}, which does not hold it`);
      env[e.name] = v;
    } else throw new LabError(`${container}: env ${e.name} has neither a value nor a source this lab resolves`);
  }
  return env;
}

/**
 * Expands `$(NAME)` as the kubelet does in args and env values: a defined name is replaced, an
 * undefined one is left as written, `$$` is one `$`.
 */
export function expand(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => (name === undefined ? '$' : (env[name] ?? m)));
}

/** A container's args as the kubelet runs them on a node: `$(VAR)`s expanded from its environment. */
export function deployContainerArgs(container: string, facts: PodFacts, manifests = loadDeployManifests()): string[] {
  const c = deployContainer(container, manifests);
  const env = deployContainerEnv(container, facts, manifests);
  return (c.args ?? []).map((a) => expand(a, env));
}
