/** Cluster-wide IPAM: ring CRDT, allocator, donations, bootstrap, reclaim, persistence. */
export * from './errors.js';
export * from './space.js';
export * from './intervals.js';
export * from './ring.js';
export { IPAM_CHANNEL, RING_LIMITS, decodeRing, encodeRing, type RingParts } from './ring-codec.js';
export * from './allocator.js';
export * from './config.js';
export * from './state-file.js';
export * from './status.js';
export * from './ipam.js';
export type { AllocatedAddress } from './allocations.js';
export { decodeMessage, encodeAsk, encodeGave, encodeGossip, type IpamMessage, type WaitingPeer } from './wire.js';
