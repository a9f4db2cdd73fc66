/**
 * List-then-watch of one kind of object, surviving the API server: a cache of the objects, a
 * watch from the last resourceVersion (bookmarks advance it), a watch that ends restarted from
 * there, a 410 Gone answered by a relist that emits the differences, and while the server is
 * away a backoff (1 s doubling to 30 s) that keeps the cache. Counters for status and metrics.
 *
 * Why not client-node's `makeInformer`/`ListWatch` (1.4): it does not ask for bookmarks, stops
 * for good on the first list or watch error (no backoff, no retry), lets a failure to open the
 * watch escape as an unhandled rejection, and keeps no counters.
 *
 *   start ─► list ─► emit differences ─► watch(rv) ─► events ─► rv advances
 *              ▲  (error: backoff)                      │ ends cleanly: watch(rv) again
 *              └──────── 410 Expired / rv lost ◄────────┘ fails: backoff, then watch(rv)
 */
import type { KubeConfig, Watch } from '@kubernetes/client-node';
import { clientNode } from './client-node.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { describeKubeError, kubeStatus } from './client.js';

export interface KubeObjectLike {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string };
}

export interface ListResult<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export type CacheEvent<T> =
  | { type: 'added'; object: T }
  | { type: 'modified'; object: T; old: T }
  | { type: 'deleted'; object: T };

export interface ListWatchCounters {
  /** A list has completed since start (the cache reflects the server at least once). */
  synced: boolean;
  /** The watch stream is open. */
  watching: boolean;
  resourceVersion: string;
  objects: number;
  lists: number;
  /** Lists after the first (410 Gone, or the version lost). */
  relists: number;
  /** Watches opened again after one ended or failed. */
  watchRestarts: number;
  /** 410 Gone answers (a watch from a version older than the server's history). */
  expired: number;
  errors: number;
  /** The last list or watch failed, and none has succeeded since (lastError says how). */
  failing: boolean;
  lastError: string | undefined;
  /** Wall-clock milliseconds of the last error. */
  lastErrorAt: number | undefined;
  /** Events the server sent that could not be used (no name, unknown type). */
  badEvents: number;
}

export interface ListWatchComponents<T> {
  config: KubeConfig;
  /** One list call (e.g. `() => core.listNode({labelSelector})`). */
  list: () => Promise<ListResult<T>>;
  clock: Clock;
  logger: Logger;
  /** Called for every change of the cache, in order; a throw is logged and does not stop the loop. */
  onEvent: (e: CacheEvent<T>) => void;
  /** Called after every completed list (the first sync, each relist), once its events are out. */
  onSynced?: () => void;
  /**
   * What the cache keeps of each object listed or watched (default: all of it), e.g. a parsed
   * model with the metadata (name, namespace, resourceVersion) it must keep. Called before the
   * object is cached or emitted; a throw is logged and the object counted as a bad event.
   */
  keep?: (object: T) => T;
}

export interface ListWatchInit {
  /** The watch path, e.g. /api/v1/nodes. */
  path: string;
  /** For logs: "Nodes". */
  what: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Asked of the server for each watch (default 300); the watch then ends and reopens. */
  timeoutSeconds?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

type WatchEnd = { kind: 'clean' } | { kind: 'expired' } | { kind: 'error'; err: unknown };

export class ListWatch<T extends KubeObjectLike> {
  private readonly c: ListWatchComponents<T>;
  private readonly init: Required<Omit<ListWatchInit, 'labelSelector' | 'fieldSelector'>> & Pick<ListWatchInit, 'labelSelector' | 'fieldSelector'>;
  private readonly watcher: Watch;
  private readonly cache = new Map<string, T>();
  private running = false;
  private loop: Promise<void> | undefined;
  private rv = '';
  private backoffMs: number;
  private sleeper: { timer: TimerHandle; wake: () => void } | undefined;
  private abortWatch: (() => void) | undefined;
  private readonly counters: ListWatchCounters = {
    synced: false,
    watching: false,
    resourceVersion: '',
    objects: 0,
    lists: 0,
    relists: 0,
    watchRestarts: 0,
    expired: 0,
    errors: 0,
    failing: false,
    lastError: undefined,
    lastErrorAt: undefined,
    badEvents: 0,
  };

  constructor(components: ListWatchComponents<T>, init: ListWatchInit) {
    this.c = components;
    this.init = { timeoutSeconds: 300, backoffMinMs: 1000, backoffMaxMs: 30_000, ...init };
    this.backoffMs = this.init.backoffMinMs;
    this.watcher = new (clientNode().Watch)(components.config);
  }

  /** Starts the loop in the background; never fails (an unreachable server is retried). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abortWatch?.();
    this.sleeper?.wake();
    await this.loop;
    this.loop = undefined;
  }

  /** The cached objects (the last state seen; kept while the server is away). */
  objects(): T[] {
    return [...this.cache.values()];
  }

  get(name: string, namespace = ''): T | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  status(): ListWatchCounters {
    return { ...this.counters, resourceVersion: this.rv, objects: this.cache.size };
  }

  private async run(): Promise<void> {
    let watched = false;
    while (this.running) {
      if (this.rv === '') {
        if (!(await this.relist())) {
          await this.backoff();
          continue;
        }
      }
      if (!this.running) break;
      if (watched) this.counters.watchRestarts++;
      watched = true;
      const opened = this.c.clock.now();
      const end = await this.watchOnce();
      if (!this.running) break;
      if (end.kind === 'expired') {
        this.counters.expired++;
        this.c.logger.info(`the watch of ${this.init.what} is too old for the API server (410 Gone); listing again`, { resourceVersion: this.rv });
        this.rv = '';
      } else if (end.kind === 'error') {
        if (kubeStatus(end.err) === 410 || (end.err as { statusCode?: unknown }).statusCode === 410) {
          this.counters.expired++;
          this.rv = '';
          continue;
        }
        const code = (end.err as { statusCode?: unknown }).statusCode;
        this.fail(typeof code === 'number' ? `watching ${this.init.what}: the API server answered ${code} ${describeError(end.err)}` : describeKubeError(`watching ${this.init.what}`, end.err));
        await this.backoff();
      } else if (this.c.clock.now() - opened < this.init.backoffMinMs) {
        // A watch that ends at once, again and again, must not spin.
        await this.backoff();
      } else {
        this.backoffMs = this.init.backoffMinMs;
      }
    }
  }

  /** Lists, emits the differences with the cache, and takes the list's version. False: it failed. */
  private async relist(): Promise<boolean> {
    let result: ListResult<T>;
    try {
      result = await this.c.list();
    } catch (err) {
      this.fail(describeKubeError(`listing ${this.init.what}`, err));
      return false;
    }
    if (!this.running) return false;
    if (this.counters.lists > 0) this.counters.relists++;
    this.counters.lists++;
    const seen = new Set<string>();
    for (const raw of result.items) {
      const key = keyOf(raw);
      const item = key === undefined ? undefined : this.kept(raw);
      if (key === undefined || item === undefined) {
        this.counters.badEvents++;
        continue;
      }
      seen.add(key);
      const old = this.cache.get(key);
      this.cache.set(key, item);
      if (old === undefined) this.emit({ type: 'added', object: item });
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.emit({ type: 'modified', object: item, old });
    }
    for (const [key, old] of [...this.cache]) {
      if (seen.has(key)) continue;
      this.cache.delete(key);
      this.emit({ type: 'deleted', object: old });
    }
    this.rv = result.metadata?.resourceVersion ?? '';
    this.counters.synced = true;
    this.counters.failing = false;
    this.backoffMs = this.init.backoffMinMs;
    try {
      this.c.onSynced?.();
    } catch (err) {
      this.c.logger.error(`a handler of ${this.init.what} failed after a list`, { err: describeError(err) });
    }
    return true;
  }

  /** One watch from this.rv until it ends; resolves with how it ended. */
  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let settled = false;
      let watchdog: TimerHandle | undefined;
      const idleMs = (this.init.timeoutSeconds + 30) * 1000;
      const finish = (end: WatchEnd): void => {
        if (settled) return;
        settled = true;
        watchdog?.cancel();
        this.counters.watching = false;
        this.abortWatch = undefined;
        resolve(end);
      };
      const arm = (): void => {
        watchdog?.cancel();
        // No event, no bookmark and no end for longer than the server's timeout: the connection is dead.
        watchdog = this.c.clock.setTimeout(() => {
          abort();
          finish({ kind: 'error', err: new Error(`no word from the API server for ${idleMs} ms`) });
        }, idleMs);
      };
      let controller: AbortController | undefined;
      let aborted = false;
      const abort = (): void => {
        aborted = true;
        controller?.abort();
      };
      this.abortWatch = () => {
        abort();
        finish({ kind: 'clean' });
      };
      const query: Record<string, string | number | boolean> = { resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds: this.init.timeoutSeconds };
      if (this.init.labelSelector !== undefined) query['labelSelector'] = this.init.labelSelector;
      if (this.init.fieldSelector !== undefined) query['fieldSelector'] = this.init.fieldSelector;
      arm();
      this.watcher
        .watch(
          this.init.path,
          query,
          (type, object) => {
            if (settled) return;
            arm();
            this.counters.watching = true;
            const end = this.onWatchEvent(type, object);
            if (end !== undefined) {
              // As client-go does: an ERROR event ends the watch.
              abort();
              finish(end);
            }
          },
          (err: unknown) => {
            if (err === null || err === undefined || aborted) finish({ kind: 'clean' });
            else finish({ kind: 'error', err });
          },
        )
        .then(
          (c) => {
            controller = c;
            if (aborted || settled) c.abort();
            else {
              this.counters.watching = true;
              this.counters.failing = false;
            }
          },
          (err: unknown) => finish({ kind: 'error', err }),
        );
    });
  }

  /** Applies one watch event; an ERROR event ends the watch (410: expired). */
  private onWatchEvent(type: string, object: unknown): WatchEnd | undefined {
    const obj = object as T & { code?: unknown; message?: unknown; reason?: unknown };
    if (type === 'BOOKMARK') {
      const rv = obj?.metadata?.resourceVersion;
      if (typeof rv === 'string' && rv !== '') this.rv = rv;
      return undefined;
    }
    if (type === 'ERROR') {
      if (obj?.code === 410) return { kind: 'expired' };
      return { kind: 'error', err: new Error(`the API server sent an error event: ${String(obj?.code)} ${String(obj?.reason)}: ${String(obj?.message)}`) };
    }
    const key = keyOf(obj);
    if (key === undefined || (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED')) {
      this.counters.badEvents++;
      this.c.logger.warn(`ignoring a watch event of ${this.init.what} the API server sent`, { type, name: obj?.metadata?.name });
      return undefined;
    }
    const rv = obj.metadata?.resourceVersion;
    if (typeof rv === 'string' && rv !== '') this.rv = rv;
    const old = this.cache.get(key);
    const item = this.kept(obj);
    if (item === undefined) this.counters.badEvents++;
    if (type === 'DELETED' || item === undefined) {
      // An object that cannot be kept is as if it were gone.
      if (old === undefined) return undefined;
      this.cache.delete(key);
      this.emit({ type: 'deleted', object: item ?? old });
    } else {
      this.cache.set(key, item);
      this.emit(old === undefined ? { type: 'added', object: item } : { type: 'modified', object: item, old });
    }
    return undefined;
  }

  /** What the cache keeps of an object; undefined when `keep` threw (logged). */
  private kept(object: T): T | undefined {
    if (this.c.keep === undefined) return object;
    try {
      return this.c.keep(object);
    } catch (err) {
      this.c.logger.warn(`cannot use an object of ${this.init.what} the API server sent`, { name: object.metadata?.name, namespace: object.metadata?.namespace, err: describeError(err) });
      return undefined;
    }
  }

  private emit(e: CacheEvent<T>): void {
    try {
      this.c.onEvent(e);
    } catch (err) {
      this.c.logger.error(`a handler of ${this.init.what} failed`, { event: e.type, name: e.object.metadata?.name, err: describeError(err) });
    }
  }

  private fail(message: string): void {
    this.counters.errors++;
    this.counters.failing = true;
    if (this.counters.lastError !== message) this.c.logger.warn(message, { retryInMs: this.backoffMs });
    this.counters.lastError = message;
    this.counters.lastErrorAt = this.c.clock.wallNow();
  }

  private async backoff(): Promise<void> {
    if (!this.running) return;
    const ms = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.init.backoffMaxMs);
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        this.sleeper?.timer.cancel();
        this.sleeper = undefined;
        resolve();
      };
      this.sleeper = { timer: this.c.clock.setTimeout(wake, ms), wake };
    });
  }
}

function keyOf(o: KubeObjectLike | undefined): string | undefined {
  const name = o?.metadata?.name;
  if (typeof name !== 'string' || name === '') return undefined;
  return `${o?.metadata?.namespace ?? ''}/${name}`;
}
