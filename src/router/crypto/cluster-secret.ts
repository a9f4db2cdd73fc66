import sodium from 'sodium-native';
import { WeftError } from '../../core/errors.js';

/**
 * The cluster secret: what a secret file holds, turned into a 32-byte cluster key. Nothing is
 * encrypted with it directly: the mesh derives the Noise PSK and the pair-handshake prologue from
 * it, and traffic keys come from the handshakes (mesh/pair-keys.ts).
 */
export const KEY_LEN = 32;
const LABEL_SECRET = Buffer.from('weft cluster secret v1\0');

/** Turns the contents of a secret file into the 32-byte cluster key (secure memory). */
export function clusterKeyFromSecret(secret: Buffer, where: string): Buffer {
  const text = secret.toString('utf8').trim();
  if (Buffer.byteLength(text) < 16) {
    throw new WeftError('ERR_SECRET_TOO_SHORT', `the cluster secret in ${where} is ${Buffer.byteLength(text)} bytes; it needs at least 16`);
  }
  const out = sodium.sodium_malloc(KEY_LEN);
  sodium.crypto_generichash(out, Buffer.concat([LABEL_SECRET, Buffer.from(text, 'utf8')]));
  return out;
}
