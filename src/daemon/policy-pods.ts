/**
 * The policy engine's two small helpers:
 * - the local pods attached by CNI (which container is which pod), persisted in the state dir
 *   (`policy-pods.json`, atomic writes) so a restarted router in standalone mode still knows them;
 * - reading its table back from `nft -j list table` (counters, set elements as nft text).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../core/atomic-file.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { readPolicySets } from '../policy/script.js';

/** A pod attached on this node by CNI ADD. */
export interface AttachedPod {
  containerId: string;
  ifName: string;
  namespace: string;
  name: string;
  /** Its addresses from the ADD (IPAM), without prefix length. */
  addresses: string[];
}

/** Where the attachments are kept between runs. */
export interface AttachmentStore {
  /** The attachments saved last; empty when none (or unreadable: logged). */
  load(): AttachedPod[];
  /** Replaces what is saved; throws when it cannot be written (the caller logs). */
  save(pods: readonly AttachedPod[]): void;
}

export const ATTACHMENTS_FILE = 'policy-pods.json';

const SAFE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The attachments in `<stateDir>/policy-pods.json`; entries that are not well formed are skipped (logged). */
export class FileAttachmentStore implements AttachmentStore {
  private readonly path: string;
  private readonly logger: Logger;

  constructor(components: { logger: Logger }, init: { stateDir: string }) {
    this.logger = components.logger;
    this.path = join(init.stateDir, ATTACHMENTS_FILE);
  }

  load(): AttachedPod[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn('cannot read the policy attachments; local pods are known from the source only', { file: this.path, err: describeError(err) });
      return [];
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      this.logger.warn('the policy attachments file is not JSON; ignored', { file: this.path, err: describeError(err) });
      return [];
    }
    const list = typeof data === 'object' && data !== null ? (data as { pods?: unknown }).pods : undefined;
    if (!Array.isArray(list)) {
      this.logger.warn('the policy attachments file has no "pods" list; ignored', { file: this.path });
      return [];
    }
    const out: AttachedPod[] = [];
    list.forEach((p: unknown, i) => {
      if (isAttachedPod(p)) out.push(p);
      else this.logger.warn('a policy attachment is not well formed; skipped', { file: this.path, index: i });
    });
    return out;
  }

  save(pods: readonly AttachedPod[]): void {
    writeFileAtomicSync(this.path, `${JSON.stringify({ version: 1, pods }, null, 1)}\n`, 0o600);
  }
}

/** In memory (tests, and routers without a state dir). */
export class MemoryAttachmentStore implements AttachmentStore {
  pods: AttachedPod[] = [];
  load(): AttachedPod[] {
    return this.pods.map((p) => ({ ...p, addresses: [...p.addresses] }));
  }
  save(pods: readonly AttachedPod[]): void {
    this.pods = pods.map((p) => ({ ...p, addresses: [...p.addresses] }));
  }
}

function isAttachedPod(p: unknown): p is AttachedPod {
  if (typeof p !== 'object' || p === null) return false;
  const o = p as Record<string, unknown>;
  const text = (v: unknown): boolean => typeof v === 'string' && v.length <= 253 && SAFE.test(v);
  return (
    text(o['containerId']) && text(o['ifName']) && text(o['namespace']) && text(o['name']) &&
    Array.isArray(o['addresses']) && (o['addresses'] as unknown[]).every((a) => typeof a === 'string' && /^[0-9a-fA-F.:]{2,45}$/.test(a))
  );
}

/** What the engine reads back from its table. */
export interface PolicyTableReading {
  counters: Map<string, { packets: number; bytes: number }>;
  /** Set name → its elements as nft text (`10.0.0.0/8`, `tcp . 80-90`), sorted. */
  sets: Map<string, string[]>;
}

/**
 * Reads `nft -j list table` output (the `nftables` array): the counters, and the sets in the
 * compiler's element text (script.ts's readPolicySets); unknown items are ignored.
 */
export function readPolicyTable(items: readonly unknown[]): PolicyTableReading {
  const counters = new Map<string, { packets: number; bytes: number }>();
  for (const item of items) {
    const c = (item as { counter?: { name?: unknown; packets?: unknown; bytes?: unknown } } | null)?.counter;
    if (c !== undefined && typeof c.name === 'string') counters.set(c.name, { packets: Number(c.packets ?? 0) || 0, bytes: Number(c.bytes ?? 0) || 0 });
  }
  return { counters, sets: readPolicySets(items) };
}
