import { createHash } from 'node:crypto';
import { WeftError } from './errors.js';

/**
 * Peer names come from public keys (never from machine-id or hostname); peer ids are the 32-bit
 * routing names in every sleeve header, derived from the peer name. 0 is reserved for "any peer".
 */
export function formatPeerId(id: number): string {
  return (id >>> 0).toString(16).padStart(8, '0');
}

/** Peer name from a public key: 16 hex digits of a domain-separated SHA-256 (never machine-id). */
export function peerNameFromPublicKey(publicKey: Uint8Array): string {
  return createHash('sha256').update('weft-peer-name\0').update(publicKey).digest('hex').slice(0, 16);
}

const PEER_NAME = /^[0-9a-f]{16}$/;

export function isPeerName(s: string): boolean {
  return PEER_NAME.test(s);
}

/**
 * 32-bit wire id of a peer name: its first 8 hex digits. 0 ("any peer", discovery) and
 * 0xffffffff (reserved) map to 1 and 0xfffffffe. Two peers can collide (about 1 in 8,600
 * for 1,000 peers); the mesh detects it and refuses the later one.
 */
export function peerIdFromPeerName(name: string): number {
  if (!PEER_NAME.test(name)) throw new WeftError('ERR_INVALID_PEER_NAME', `not a peer name: ${JSON.stringify(name)} (16 hex digits expected)`);
  const id = Number.parseInt(name.slice(0, 8), 16) >>> 0;
  if (id === 0) return 1;
  if (id === 0xffffffff) return 0xfffffffe;
  return id;
}
