import { createHash } from 'node:crypto';

/**
 * Peer ids are the 32-bit routing names used in every sleeve header, derived from the peer name
 * (never from machine-id or hostname). 0 is reserved for "any peer" (discovery).
 */
export function peerIdFromName(name: string): number {
  const h = createHash('sha256').update('weft-peer-id\0').update(name, 'utf8').digest();
  const id = h.readUInt32BE(0);
  return id === 0 ? 1 : id;
}

export function formatPeerId(id: number): string {
  return (id >>> 0).toString(16).padStart(8, '0');
}
