/**
 * The policy file of standalone mode: one YAML file (several documents, and `kind: List` with
 * `items`) of NetworkPolicy, Namespace and Pod objects, the same YAML as for Kubernetes. Pods
 * give labels and named ports (and addresses, for pods on other nodes); pods this node's CNI
 * attaches that the file does not name are the engine's business. A namespace a policy or a pod
 * names without a Namespace document exists with only its `kubernetes.io/metadata.name` label.
 *
 * Reloaded when the file changes: fs.watch on its directory (a rename over it counts), and a look
 * at its size, mtime and inode every `pollMs` (2 s) for file systems where watching fails. A bad
 * document is skipped and listed in `describe().problems`, the rest used; a file that cannot be
 * read or parsed keeps the previous snapshot in force and sets `describe().error`; a file missing
 * at start is an error with no snapshot (the engine keeps the kernel's rules) until it appears.
 * A file changed while it is read is read again; a writer should still rename a complete file
 * over it (a read between an in-place truncate and the write would see it empty).
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { CORE_SCHEMA, loadAll } from 'js-yaml';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { NetworkPolicy, PolicyNamespace, PolicyObjectProblem, PolicyPod, PolicySnapshot, PolicySource } from './model.js';
import { implicitNamespace, parseNamespace, parseNetworkPolicy, parsePod, type ParseResult } from './objects.js';

export interface FilePolicySourceComponents {
  clock: Clock;
  logger: Logger;
}

export interface FilePolicySourceInit {
  path: string;
  /** How often the file's size, mtime and inode are compared (default 2000 ms). */
  pollMs?: number;
  /** A larger file is refused (default 16 MiB). */
  maxBytes?: number;
  /** Events within this long are read once (default 50 ms). */
  settleMs?: number;
}

export const POLICY_FILE_MAX_BYTES = 16 * 1024 * 1024;

/** What one read of the file gave. */
export interface PolicyFileContents {
  snapshot: PolicySnapshot;
  problems: PolicyObjectProblem[];
}

const KINDS: Record<string, string> = { NetworkPolicy: 'networking.k8s.io/v1', Namespace: 'v1', Pod: 'v1' };

/**
 * Parses the text of a policy file (`name` for the problems). Throws only when the YAML itself
 * cannot be parsed; bad documents are problems.
 */
export function parsePolicyFile(text: string, name: string): PolicyFileContents {
  const docs = loadAll(text, undefined, { schema: CORE_SCHEMA, filename: name });
  const problems: PolicyObjectProblem[] = [];
  const policies = new Map<string, NetworkPolicy>();
  const pods = new Map<string, PolicyPod>();
  const namespaces = new Map<string, PolicyNamespace>();
  const seenAt = new Map<string, string>();
  const take = <T extends { name: string }>(where: string, kind: string, r: ParseResult<T>, into: Map<string, T>, keyOf: (v: T) => string): void => {
    if ('problems' in r) {
      problems.push(...r.problems);
      return;
    }
    const key = keyOf(r.ok);
    const before = seenAt.get(`${kind} ${key}`);
    if (before !== undefined) problems.push({ where, problem: `${kind} ${key} is also in ${before}: this later one is used` });
    seenAt.set(`${kind} ${key}`, where);
    into.set(key, r.ok);
  };
  const one = (obj: unknown, where: string): void => {
    const kind = typeof obj === 'object' && obj !== null && !Array.isArray(obj) ? (obj as Record<string, unknown>)['kind'] : undefined;
    if (typeof kind !== 'string' || !Object.hasOwn(KINDS, kind)) {
      problems.push({ where, problem: `kind: ${kind === undefined ? 'missing' : JSON.stringify(kind).slice(0, 40)}, not NetworkPolicy, Namespace, Pod or List (skipped)` });
      return;
    }
    const apiVersion = (obj as Record<string, unknown>)['apiVersion'];
    if (apiVersion !== undefined && apiVersion !== KINDS[kind]) {
      problems.push({ where: `${where} (${kind})`, problem: `apiVersion: ${JSON.stringify(apiVersion).slice(0, 40)} is not ${KINDS[kind]}` });
      return;
    }
    if (kind === 'NetworkPolicy') take(where, kind, parseNetworkPolicy(obj, where), policies, (p) => `${p.namespace}/${p.name}`);
    else if (kind === 'Pod') take(where, kind, parsePod(obj, where), pods, (p) => `${p.namespace}/${p.name}`);
    else take(where, kind, parseNamespace(obj, where), namespaces, (n) => n.name);
  };
  docs.forEach((doc, i) => {
    const where = `${name} document ${i + 1}`;
    if (doc === null || doc === undefined) return;
    if (sharesNodes(doc)) {
      problems.push({ where, problem: 'uses YAML aliases (*name), which the policy file does not accept (skipped)' });
      return;
    }
    const d = doc as Record<string, unknown>;
    if (typeof d === 'object' && !Array.isArray(d) && d['kind'] === 'List') {
      const items = d['items'];
      if (!Array.isArray(items)) {
        problems.push({ where: `${where} (List)`, problem: 'items: must be a list' });
        return;
      }
      items.forEach((item, j) => one(item, `${where} item ${j + 1}`));
    } else one(doc, where);
  });
  for (const ns of [...policies.values(), ...pods.values()].map((o) => o.namespace)) {
    if (!namespaces.has(ns)) namespaces.set(ns, implicitNamespace(ns));
  }
  return { snapshot: { policies: [...policies.values()], pods: [...pods.values()], namespaces: [...namespaces.values()] }, problems };
}

/** True when one object or list is reached twice (YAML aliases): refused, as they can multiply the work. */
function sharesNodes(doc: unknown): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [doc];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (seen.has(v)) return true;
    seen.add(v);
    for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push(x);
  }
  return false;
}

interface FileSignature {
  size: number;
  mtimeMs: number;
  ino: number;
  ctimeMs: number;
}

export class FilePolicySource implements PolicySource {
  private readonly c: FilePolicySourceComponents;
  private readonly path: string;
  private readonly pollMs: number;
  private readonly maxBytes: number;
  private readonly settleMs: number;
  private readonly listeners = new Set<() => void>();
  private current: PolicySnapshot | undefined;
  private problems: PolicyObjectProblem[] = [];
  private error: string | undefined;
  private lastText: string | undefined;
  private signature: string | undefined;
  private watcher: FSWatcher | undefined;
  private poll: TimerHandle | undefined;
  private settle: TimerHandle | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private running = false;
  private reloads = 0;
  private readCount = 0;

  constructor(components: FilePolicySourceComponents, init: FilePolicySourceInit) {
    this.c = components;
    this.path = init.path;
    this.pollMs = init.pollMs ?? 2000;
    this.maxBytes = init.maxBytes ?? POLICY_FILE_MAX_BYTES;
    this.settleMs = init.settleMs ?? 50;
  }

  /** Reads the file once (never fails: a problem is in describe()), then follows it. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.reload();
    this.startWatch();
    this.poll = this.c.clock.setInterval(() => void this.checkSignature(), this.pollMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.watcher?.close();
    this.watcher = undefined;
    this.poll?.cancel();
    this.settle?.cancel();
    this.poll = undefined;
    this.settle = undefined;
    await this.reading;
  }

  snapshot(): PolicySnapshot | undefined {
    return this.current;
  }

  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  describe(): { kind: 'file'; where: string; synced: boolean; problems: PolicyObjectProblem[]; error: string | undefined } {
    return { kind: 'file', where: this.path, synced: this.current !== undefined, problems: [...this.problems], error: this.error };
  }

  /** Reads that changed the snapshot or the error (for status and tests). */
  get changes(): number {
    return this.reloads;
  }

  /** Reads of the file, changed or not. */
  get reads(): number {
    return this.readCount;
  }

  private startWatch(): void {
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.schedule();
      });
      this.watcher.on('error', (err) => {
        this.c.logger.warn(`watching the directory of the policy file ${this.path} failed; looking at it every ${this.pollMs} ms`, { err: describeError(err) });
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.c.logger.warn(`cannot watch the directory of the policy file ${this.path}; looking at it every ${this.pollMs} ms`, { err: describeError(err) });
    }
  }

  private schedule(): void {
    if (!this.running || this.settle !== undefined) return;
    this.settle = this.c.clock.setTimeout(() => {
      this.settle = undefined;
      void this.reload();
    }, this.settleMs);
  }

  private async checkSignature(): Promise<void> {
    let sig: string;
    try {
      const s = await stat(this.path);
      sig = signatureText({ size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, ctimeMs: s.ctimeMs });
    } catch (err) {
      sig = `error ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`;
    }
    if (sig !== this.signature) this.schedule();
  }

  /** One read at a time; a change during a read reads again after it. */
  private reload(): Promise<void> {
    if (this.reading !== undefined) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        await this.readOnce();
      } while (this.again && this.running);
      this.reading = undefined;
    })();
    return this.reading;
  }

  private async readOnce(): Promise<void> {
    this.readCount++;
    let text: string;
    try {
      const f = await open(this.path, 'r');
      try {
        const s = await f.stat();
        this.signature = signatureText({ size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, ctimeMs: s.ctimeMs });
        if (!s.isFile()) throw new Error('it is not a regular file');
        if (s.size > this.maxBytes) throw new Error(`it has ${s.size} bytes, more than the ${this.maxBytes} allowed`);
        const buf = Buffer.alloc(Math.min(s.size + 1, this.maxBytes + 1));
        const { bytesRead } = await f.read(buf, 0, buf.length, 0);
        if (bytesRead > this.maxBytes) throw new Error(`it has more than the ${this.maxBytes} bytes allowed`);
        text = buf.subarray(0, bytesRead).toString('utf8');
      } finally {
        await f.close();
      }
      // Written to while being read (an editor writing in place): read it again once it settles.
      const after = await stat(this.path);
      if (signatureText({ size: after.size, mtimeMs: after.mtimeMs, ino: after.ino, ctimeMs: after.ctimeMs }) !== this.signature) {
        this.signature = undefined;
        this.schedule();
        return;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined) this.signature = `error ${code}`;
      this.fail(code === 'ENOENT' ? `the policy file ${this.path} does not exist` : `cannot read the policy file ${this.path}: ${describeError(err)}`);
      return;
    }
    if (text === this.lastText && this.error === undefined) return;
    let contents: PolicyFileContents;
    try {
      contents = parsePolicyFile(text, this.path);
    } catch (err) {
      this.lastText = undefined;
      this.fail(`the policy file ${this.path} is not valid YAML: ${describeError(err).split('\n')[0]}`);
      return;
    }
    this.lastText = text;
    const was = this.error;
    this.error = undefined;
    if (was !== undefined) this.c.logger.info(`the policy file ${this.path} is read again`);
    for (const p of contents.problems) {
      if (!this.problems.some((q) => q.where === p.where && q.problem === p.problem)) this.c.logger.warn(`policy file: skipping ${p.where}: ${p.problem}`);
    }
    this.problems = contents.problems;
    this.current = contents.snapshot;
    this.c.logger.info(`policy file ${this.path} read`, { policies: contents.snapshot.policies.length, pods: contents.snapshot.pods.length, namespaces: contents.snapshot.namespaces.length, skipped: contents.problems.length });
    this.changed();
  }

  private fail(message: string): void {
    if (this.error !== message) {
      this.c.logger.warn(this.current === undefined ? message : `${message}; the policies read before stay in force`);
      this.error = message;
      this.changed();
    }
  }

  private changed(): void {
    this.reloads++;
    for (const fn of this.listeners) {
      try {
        fn();
      } catch (err) {
        this.c.logger.error('a listener of the policy file failed', { err: describeError(err) });
      }
    }
  }
}

function signatureText(s: FileSignature): string {
  return `${s.size} ${s.mtimeMs} ${s.ino} ${s.ctimeMs}`;
}
