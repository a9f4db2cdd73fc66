/**
 * Reading untrusted plain objects field by field for objects.ts: own properties only, lists and
 * maps bounded (LIMITS), every problem gathered with its field path, values shown cut short; and
 * the Kubernetes API's rules for names, label keys and values, and port names (apimachinery's
 * validation: IsDNS1123Label, IsDNS1123Subdomain, IsQualifiedName, IsValidLabelValue,
 * IsValidPortName).
 */
import { DNS_LABEL_MAX, DNS_SUBDOMAIN_MAX, isDnsLabel, isDnsSubdomain } from '../core/dns-names.js';
import type { PolicyObjectProblem } from './model.js';

export const LIMITS = {
  /** Rules per direction, peers and ports per rule, except entries per ipBlock. */
  list: 1000,
  /** Labels of an object or a matchLabels, expressions of a selector, values of an expression. */
  labels: 1000,
  /** Containers of a pod (with its sidecar init containers), ports per container. */
  containers: 1000,
  /** Problems kept per object (the rest counted). */
  problems: 20,
} as const;

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const PORT_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An own property only (never one of Object.prototype's). */
export function field(o: Obj, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, name) ? o[name] : undefined;
}

/** A value for a problem text: JSON, cut at 40 characters. */
export function show(v: unknown): string {
  let text: string;
  try {
    text = typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'a list' : isObj(v) ? 'an object' : String(JSON.stringify(v) ?? typeof v);
  } catch {
    text = typeof v;
  }
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** Gathers the problems of one object. */
export class Problems {
  readonly list: string[] = [];
  private more = 0;

  add(path: string, problem: string): void {
    if (this.list.length < LIMITS.problems) this.list.push(path === '' ? problem : `${path}: ${problem}`);
    else this.more++;
  }

  get count(): number {
    return this.list.length + this.more;
  }

  result(where: string): PolicyObjectProblem[] {
    const out = this.list.map((problem) => ({ where, problem }));
    if (this.more > 0) out.push({ where, problem: `and ${this.more} more problems` });
    return out;
  }
}

/** Reads `o[name]` as a list (null/absent: empty); a non-list or an over-long one is a problem. */
export function list(o: Obj, name: string, path: string, p: Problems, limit: number = LIMITS.list): unknown[] {
  const v = field(o, name);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    p.add(path, `must be a list, not ${show(v)}`);
    return [];
  }
  if (v.length > limit) {
    p.add(path, `has ${v.length} entries, more than the ${limit} allowed`);
    return [];
  }
  return v;
}

/** Reads `o[name]` as an object (null/absent: undefined). */
export function object(o: Obj, name: string, path: string, p: Problems): Obj | undefined {
  const v = field(o, name);
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) {
    p.add(path, `must be an object, not ${show(v)}`);
    return undefined;
  }
  return v;
}

export function optionalString(o: Obj, name: string, path: string, p: Problems): string | undefined {
  const v = field(o, name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') {
    p.add(path, `must be a string, not ${show(v)}`);
    return undefined;
  }
  return v;
}

export function dnsLabelProblem(s: string): string | undefined {
  if (s.length > DNS_LABEL_MAX) return `${show(s)} is longer than ${DNS_LABEL_MAX} characters`;
  if (!isDnsLabel(s)) return `${show(s)} is not a DNS label (lowercase letters, digits and '-', alphanumeric at both ends)`;
  return undefined;
}

export function dnsSubdomainProblem(s: string): string | undefined {
  if (s.length > DNS_SUBDOMAIN_MAX) return `${show(s)} is longer than ${DNS_SUBDOMAIN_MAX} characters`;
  if (!isDnsSubdomain(s)) return `${show(s)} is not a DNS subdomain (lowercase letters, digits, '-' and '.', alphanumeric at both ends)`;
  return undefined;
}

export function labelKeyProblem(k: string): string | undefined {
  if (k.length > 317) return `the key ${show(k)} is too long`;
  const slash = k.indexOf('/');
  const name = slash < 0 ? k : k.slice(slash + 1);
  if (slash >= 0) {
    const prefix = k.slice(0, slash);
    if (prefix === '') return `the key ${show(k)} has an empty prefix`;
    const bad = dnsSubdomainProblem(prefix);
    if (bad !== undefined) return `the prefix of the key ${show(k)}: ${bad}`;
  }
  if (name === '') return `the key ${show(k)} has an empty name`;
  if (name.length > 63) return `the key ${show(k)}: the name part is longer than 63 characters`;
  if (!LABEL_NAME.test(name)) return `the key ${show(k)} is not a label key (alphanumeric at both ends, '-', '_' and '.' inside, an optional DNS prefix and '/')`;
  return undefined;
}

export function labelValueProblem(v: string): string | undefined {
  if (v.length > 63) return `the value ${show(v)} is longer than 63 characters`;
  if (v !== '' && !LABEL_NAME.test(v)) return `the value ${show(v)} is not a label value (empty, or alphanumeric at both ends with '-', '_' and '.' inside)`;
  return undefined;
}

/** IANA_SVC_NAME, as a container port's name and a named port in a policy. */
export function portNameProblem(s: string): string | undefined {
  if (s.length > 15) return `${show(s)} is longer than 15 characters`;
  if (!PORT_NAME.test(s)) return `${show(s)} is not a port name (lowercase letters, digits and '-', alphanumeric at both ends)`;
  if (s.includes('--')) return `${show(s)} has '--' in it`;
  if (!/[a-z]/.test(s)) return `${show(s)} has no letter`;
  return undefined;
}

export function isPortNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

/** A string → string map of labels (keys and values checked), without a prototype. */
export function labels(v: unknown, path: string, p: Problems): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  if (v === undefined || v === null) return out;
  if (!isObj(v)) {
    p.add(path, `must be a map of labels, not ${show(v)}`);
    return out;
  }
  const entries = Object.entries(v);
  if (entries.length > LIMITS.labels) {
    p.add(path, `has ${entries.length} labels, more than the ${LIMITS.labels} allowed`);
    return out;
  }
  for (const [k, value] of entries) {
    const at = `${path}[${show(k)}]`;
    const badKey = labelKeyProblem(k);
    if (badKey !== undefined) p.add(path, badKey);
    if (typeof value !== 'string') {
      p.add(at, `must be a string, not ${show(value)}`);
      continue;
    }
    const badValue = labelValueProblem(value);
    if (badValue !== undefined) p.add(at, badValue);
    if (badKey === undefined && badValue === undefined) out[k] = value;
  }
  return out;
}
