/**
 * Revoking one node (issue 19): the blocklist of this router, its "blocklist" channel, its file
 * and its enforcement.
 *
 *   weft revoke (signs) ─ POST /v1/revoke ─ checked, merged ─ blocklist.json ─ gossip (delta)
 *   gossip from a neighbour ─ checked, merged ─ blocklist.json ─ relayed (delta)
 *   a new entry: another peer → the mesh shuts it out (`Mesh.revoked`); this router → fatal (ERR_REVOKED)
 *
 * The file (`<state dir>/blocklist.json`, written atomically) is read at construction: a router
 * whose own name it lists (with a valid signature) refuses to start. Entries are checked against
 * the revocation public key whenever they come in, the file's included; without a key the file is
 * not read and every entry is refused (counted).
 */
import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../core/atomic-file.js';
import { isoTime } from '../core/clock.js';
import { WeftError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';
import { ApiError } from '../api/errors.js';
import type { RevocationStatus, RevokeResponse } from '../api/types.js';
import { BLOCKLIST_CHANNEL, BLOCKLIST_MIN_PROTOCOL, Blocklist } from '../mesh/blocklist.js';
import type { PeerName } from '../mesh/contracts.js';
import type { GossipChannel } from '../mesh/gossip-channel.js';
import type { Mesh } from '../mesh/mesh.js';
import { encodeBlocklist } from '../mesh/blocklist.js';
import { entryFromJson, entryToJson, publicKeyHex, verifyRevocation, type RevocationEntry } from '../mesh/revocation.js';

export const BLOCKLIST_FILE = 'blocklist.json';
/** Full blocklist gossip this often (deltas go at once). */
const GOSSIP_INTERVAL_MS = 10_000;

export class RevokedError extends WeftError {
  constructor(self: PeerName, e: RevocationEntry, where: string) {
    super('ERR_REVOKED', `this router (${self}) is revoked ${where} since ${isoTime(e.at)}${e.reason === '' ? '' : ` (${e.reason})`}; it cannot rejoin the mesh (give the host a new identity: remove identity.key and blocklist.json from the state directory)`);
    this.name = 'RevokedError';
  }
}

export interface RevocationComponents {
  logger: Logger;
  self: PeerName;
  /** This router is revoked while it runs: it must stop (exit 1). */
  onFatal: (err: WeftError) => void;
  /** The nickname topology has for a peer (status). */
  nicknameOf?: (peer: PeerName) => string | undefined;
}

export interface RevocationInit {
  stateDir: string;
  publicKey: KeyObject | undefined;
}

export class Revocation implements Startable {
  readonly name = 'revocation';
  readonly blocklist: Blocklist;
  private readonly components: RevocationComponents;
  private readonly file: string;
  private readonly publicKey: KeyObject | undefined;
  private mesh: Mesh | undefined;
  private channel: GossipChannel | undefined;
  private fatalSent = false;

  /** Reads the file; throws RevokedError when it revokes this router. */
  constructor(components: RevocationComponents, init: RevocationInit) {
    this.components = components;
    this.publicKey = init.publicKey;
    this.file = join(init.stateDir, BLOCKLIST_FILE);
    this.blocklist = new Blocklist({ publicKey: init.publicKey, onRevoked: (entries) => this.onRevoked(entries) });
    this.load();
    const own = this.blocklist.get(components.self);
    if (own !== undefined) throw new RevokedError(components.self, own, `by ${this.file}`);
  }

  isRevoked(peer: PeerName): boolean {
    return this.blocklist.isRevoked(peer);
  }

  /** Joins the mesh: the "blocklist" channel (made here; the mesh must have been built with `isRevoked`). */
  attach(mesh: Mesh): void {
    this.mesh = mesh;
    this.channel = mesh.newChannel(BLOCKLIST_CHANNEL, this.blocklist, { intervalMs: GOSSIP_INTERVAL_MS, minProtocol: BLOCKLIST_MIN_PROTOCOL });
  }

  start(): Promise<void> {
    this.channel?.start();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.channel?.stop();
    return Promise.resolve();
  }

  /** POST /v1/revoke: a signed entry from `weft revoke`. */
  revoke(body: unknown): RevokeResponse {
    const e = entryFromJson(body);
    if (typeof e === 'string') throw new ApiError('ERR_BAD_REQUEST', `revoke: ${e}`);
    if (this.publicKey === undefined) throw new ApiError('ERR_BAD_REQUEST', 'revoke: this router has no revocation public key (--revocation-pubkey), so it accepts no entry');
    if (!verifyRevocation(this.publicKey, e)) {
      this.blocklist.refused.badSignature++;
      throw new ApiError('ERR_BAD_REQUEST', `revoke: the signature of the entry for ${e.peer} does not verify with this router's revocation public key (${publicKeyHex(this.publicKey)})`);
    }
    if (e.peer === this.components.self) throw new ApiError('ERR_BAD_REQUEST', `revoke: ${e.peer} is this router; send the revocation to another router (this one would stop before passing it on)`);
    const changed = this.blocklist.merge([e]);
    if (changed.length > 0) this.channel?.publish(encodeBlocklist(changed));
    return { peer: e.peer, added: changed.some((c) => c.peer === e.peer) };
  }

  status(): RevocationStatus {
    const refusedBy: Record<string, number> = {};
    for (const [reason, n] of Object.entries(this.blocklist.refused)) if (n > 0) refusedBy[reason] = n;
    return {
      enabled: this.publicKey !== undefined,
      publicKey: this.publicKey === undefined ? '' : publicKeyHex(this.publicKey),
      entries: this.blocklist.list().map((e) => ({ ...entryToJson(e), nickname: this.components.nicknameOf?.(e.peer) ?? '' })),
      refused: this.blocklist.refusedTotal,
      refusedBy,
    };
  }

  private onRevoked(entries: readonly RevocationEntry[]): void {
    this.save();
    const log = this.components.logger;
    for (const e of entries) {
      if (e.peer === this.components.self) {
        if (this.fatalSent) continue;
        this.fatalSent = true;
        this.components.onFatal(new RevokedError(this.components.self, e, 'by the cluster\'s blocklist'));
        continue;
      }
      log.warn('peer revoked: its connections are closed and refused', { peer: e.peer, nickname: this.components.nicknameOf?.(e.peer) ?? '', at: isoTime(e.at), reason: e.reason });
      this.mesh?.revoked(e.peer);
    }
  }

  private load(): void {
    if (!existsSync(this.file)) return;
    const log = this.components.logger;
    if (this.publicKey === undefined) {
      log.warn('a blocklist file is here but no --revocation-pubkey is given: it is not enforced', { file: this.file });
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
    } catch (err) {
      throw new WeftError('ERR_BLOCKLIST_FILE', `cannot read the blocklist ${this.file}: ${describeError(err)} (remove it: the mesh gossips the entries again)`, { cause: err });
    }
    const list = typeof parsed === 'object' && parsed !== null ? (parsed as { entries?: unknown }).entries : undefined;
    if (!Array.isArray(list)) throw new WeftError('ERR_BLOCKLIST_FILE', `the blocklist ${this.file} has no "entries" list (remove it: the mesh gossips the entries again)`);
    const entries: RevocationEntry[] = [];
    for (const item of list) {
      const e = entryFromJson(item);
      if (typeof e === 'string') this.blocklist.refused.malformed++;
      else entries.push(e);
    }
    this.blocklist.merge(entries, false);
    if (this.blocklist.size > 0) log.info('blocklist loaded', { file: this.file, entries: this.blocklist.size, refused: this.blocklist.refusedTotal });
  }

  private save(): void {
    const text = `${JSON.stringify({ version: 1, entries: this.blocklist.list().map(entryToJson) }, null, 2)}\n`;
    try {
      writeFileAtomicSync(this.file, text, 0o644);
    } catch (err) {
      // The entries stay in force in memory, and gossip brings them again after a restart.
      this.components.logger.error('cannot write the blocklist', { file: this.file, err: describeError(err) });
    }
  }
}
