import sodium from 'sodium-native';
import { WeftError } from '../../src/core/errors.js';

/**
 * Keys derived from the cluster secret (the interim scheme until the mesh handshake): one key per
 * (sender, receiver, sender session). The session id ("key id") is the sender's start time in
 * tenths of a second since 2025-01-01, so a restarted sender never reuses a (key, nonce) pair and
 * receivers can refuse sessions older than the one they use. Receiver 0 is the discovery key
 * (hello to an address whose peer is not known yet).
 */
export const KEY_LEN = 32;
const EPOCH_BASE_MS = Date.UTC(2025, 0, 1);
const LABEL_SECRET = Buffer.from('weft cluster secret v1\0');
const LABEL_KEY = Buffer.from('weft sleeve key v1\0');

export function sessionIdAt(wallMs: number): number {
  return Math.max(1, Math.floor((wallMs - EPOCH_BASE_MS) / 100)) >>> 0;
}

/** Turns the contents of a secret file into the 32-byte cluster key. */
export function clusterKeyFromSecret(secret: Buffer, where: string): Buffer {
  const text = secret.toString('utf8').trim();
  if (Buffer.byteLength(text) < 16) {
    throw new WeftError('ERR_SECRET_TOO_SHORT', `the cluster secret in ${where} is ${Buffer.byteLength(text)} bytes; it needs at least 16`);
  }
  const out = sodium.sodium_malloc(KEY_LEN);
  sodium.crypto_generichash(out, Buffer.concat([LABEL_SECRET, Buffer.from(text, 'utf8')]));
  return out;
}

export class StaticKeySchedule {
  private readonly clusterKey: Buffer;
  private readonly input = Buffer.alloc(LABEL_KEY.length + 12);

  constructor(clusterKey: Buffer) {
    this.clusterKey = clusterKey;
    LABEL_KEY.copy(this.input, 0);
  }

  /** Derives the key for messages from `src` to `dst` under the sender session `keyId` into `out`. */
  derive(out: Buffer, src: number, dst: number, keyId: number): void {
    const o = LABEL_KEY.length;
    this.input.writeUInt32BE(src >>> 0, o);
    this.input.writeUInt32BE(dst >>> 0, o + 4);
    this.input.writeUInt32BE(keyId >>> 0, o + 8);
    sodium.crypto_generichash(out, this.input, this.clusterKey);
  }

  newKey(): Buffer {
    return sodium.sodium_malloc(KEY_LEN);
  }

  wipe(key: Buffer): void {
    sodium.sodium_memzero(key);
  }
}
