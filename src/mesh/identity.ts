/**
 * A router's identity: an X25519 key pair made on first start and kept in the state directory
 * (`identity.key`, 32 secret bytes, mode 0600, written atomically: temp file, fsync, rename).
 * The peer name is derived from the public key, so cloned machines (same machine-id, same
 * hostname) never collide; the nickname is only for people.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { removeLeftoverTemps, writeFileAtomicSync } from '../core/atomic-file.js';
import { join } from 'node:path';
import sodium from 'sodium-native';
import { FileWriteError, WeftError } from '../core/errors.js';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../core/ids.js';
import type { PeerName } from './contracts.js';
import { Signer } from './signing.js';

export const IDENTITY_FILE = 'identity.key';

export interface Identity {
  name: PeerName;
  /** 32-bit wire id (sleeve headers). */
  id: number;
  nickname: string;
  publicKey: Buffer;
  /** Secure memory; never logged, never copied out. */
  secretKey: Buffer;
  /** Signs with the secret key (XEdDSA, see signing.ts); receivers check with `publicKey`. */
  signer: Signer;
  /** True when this start created the key pair. */
  created: boolean;
}

export class IdentityError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_IDENTITY', message, options);
    this.name = 'IdentityError';
  }
}

export function keyPairFromSecret(secret: Uint8Array): { publicKey: Buffer; secretKey: Buffer } {
  const secretKey = sodium.sodium_malloc(sodium.crypto_scalarmult_SCALARBYTES) as Buffer;
  secretKey.set(secret);
  const publicKey = Buffer.alloc(sodium.crypto_scalarmult_BYTES);
  sodium.crypto_scalarmult_base(publicKey, secretKey);
  return { publicKey, secretKey };
}

export function generateIdentity(nickname: string): Identity {
  const secret = Buffer.alloc(sodium.crypto_scalarmult_SCALARBYTES);
  sodium.randombytes_buf(secret);
  const kp = keyPairFromSecret(secret);
  sodium.sodium_memzero(secret);
  return toIdentity(kp, nickname, true);
}

function toIdentity(kp: { publicKey: Buffer; secretKey: Buffer }, nickname: string, created: boolean): Identity {
  const name = peerNameFromPublicKey(kp.publicKey);
  return { name, id: peerIdFromPeerName(name), nickname, publicKey: kp.publicKey, secretKey: kp.secretKey, signer: new Signer(kp.secretKey), created };
}

/** Loads `stateDir/identity.key`, or creates it (and the directory, 0700) on first start. */
export function loadOrCreateIdentity(stateDir: string, nickname: string): Identity {
  const file = join(stateDir, IDENTITY_FILE);
  let raw: Buffer | undefined;
  try {
    raw = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new IdentityError(`cannot read the identity key ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (raw !== undefined) {
    if (raw.length !== sodium.crypto_scalarmult_SCALARBYTES) {
      throw new IdentityError(
        `identity key ${file} is ${raw.length} bytes, expected ${sodium.crypto_scalarmult_SCALARBYTES}: ` +
          'the file is damaged; move it away to make a new identity (the peer will get a new name)',
      );
    }
    const mode = statSync(file).mode & 0o077;
    if (mode !== 0) throw new IdentityError(`identity key ${file} is readable by others (mode ${(statSync(file).mode & 0o777).toString(8)}); chmod 600 it`);
    const kp = keyPairFromSecret(raw);
    raw.fill(0);
    return toIdentity(kp, nickname, false);
  }
  const id = generateIdentity(nickname);
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    removeLeftoverTemps(file); // a first start that crashed mid-write may have left one (with a secret in it)
    writeFileAtomicSync(file, id.secretKey, 0o600, { exclusive: true });
  } catch (err) {
    // Another process made the key between our read and our write: that key is the identity.
    if (err instanceof FileWriteError && err.errnoName === 'EEXIST') return loadOrCreateIdentity(stateDir, nickname);
    throw new IdentityError(`cannot write the identity key in ${stateDir}: ${(err as Error).message}`, { cause: err });
  }
  return id;
}
