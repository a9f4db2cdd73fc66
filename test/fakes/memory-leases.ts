/**
 * Leases in memory with the API server's concurrency rules, for LeaseBlocks' unit tests: a
 * create of an existing name is 409 AlreadyExists, a replace whose resourceVersion is not the
 * stored one is 409 Conflict, of a missing name 404; every write bumps one resourceVersion
 * counter. Failures are the client's `ApiException` (what `kubeStatus` reads). `down` makes every
 * call fail as an unreachable server does; `calls` records them.
 */
import { ApiException, type V1Lease } from '@kubernetes/client-node';
import type { LeaseApi } from '../../src/k8s/blocks.js';

export class MemoryLeases implements LeaseApi {
  readonly objects = new Map<string, V1Lease>();
  down = false;
  calls: string[] = [];
  private rv = 1;
  /** Runs before a write is applied (to let another writer in first). */
  beforeWrite: ((verb: 'create' | 'replace', name: string) => Promise<void> | void) | undefined = undefined;

  private key(ns: string, name: string): string {
    return `${ns}/${name}`;
  }

  private fail(code: number, reason: string, message: string): never {
    throw new ApiException(code, `HTTP-Code: ${code}`, JSON.stringify({ kind: 'Status', status: 'Failure', reason, message, code }), {});
  }

  private check(): void {
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
  }

  async list(namespace: string, labelSelector: string): Promise<V1Lease[]> {
    this.calls.push(`list ${namespace} ${labelSelector}`);
    this.check();
    const [k, v] = labelSelector.split('=');
    return [...this.objects.entries()].filter(([key, o]) => key.startsWith(`${namespace}/`) && o.metadata?.labels?.[k!] === v).map(([, o]) => structuredClone(o));
  }

  async create(namespace: string, lease: V1Lease): Promise<V1Lease> {
    const name = lease.metadata?.name ?? '';
    this.calls.push(`create ${name}`);
    this.check();
    await this.beforeWrite?.('create', name);
    if (this.objects.has(this.key(namespace, name))) this.fail(409, 'AlreadyExists', `leases.coordination.k8s.io "${name}" already exists`);
    const stored: V1Lease = { ...structuredClone(lease), metadata: { ...structuredClone(lease.metadata), namespace, resourceVersion: String(++this.rv) } };
    this.objects.set(this.key(namespace, name), stored);
    return structuredClone(stored);
  }

  async replace(namespace: string, name: string, lease: V1Lease): Promise<V1Lease> {
    this.calls.push(`replace ${name}`);
    this.check();
    await this.beforeWrite?.('replace', name);
    const cur = this.objects.get(this.key(namespace, name));
    if (cur === undefined) this.fail(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`);
    if (lease.metadata?.resourceVersion !== cur.metadata?.resourceVersion) {
      this.fail(409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    const stored: V1Lease = { ...structuredClone(lease), metadata: { ...structuredClone(lease.metadata), namespace, resourceVersion: String(++this.rv) } };
    this.objects.set(this.key(namespace, name), stored);
    return structuredClone(stored);
  }

  /** Puts a Lease as another writer would (kubectl, another router), bumping the resourceVersion. */
  put(namespace: string, lease: V1Lease): void {
    const name = lease.metadata?.name ?? '';
    this.objects.set(this.key(namespace, name), { ...lease, metadata: { ...lease.metadata, namespace, resourceVersion: String(++this.rv) } });
  }

  holder(namespace: string, name: string): string | undefined {
    return this.objects.get(this.key(namespace, name))?.spec?.holderIdentity;
  }
}
