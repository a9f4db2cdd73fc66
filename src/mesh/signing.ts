/**
 * Signatures with a router's X25519 identity key, so records gossiped by their owner can be
 * checked by every receiver against the public key the peer name is derived from (no second key
 * to bind). The construction is XEdDSA's (Signal, "The XEdDSA and VXEdDSA Signature Schemes"):
 *
 *   signing     k = the clamped X25519 secret; E = k·B on Ed25519; a = k mod L, negated when E's
 *               sign bit is set, so A = a·B always has sign bit 0 (A.y = E.y). The signature is a
 *               Schnorr signature (R, s) with a, computed by libsodium in constant time
 *               (sodium-native's scalar signing: deterministic nonce from a and the message).
 *   verifying   A.y = (u − 1) / (u + 1) mod p from the Montgomery u (the X25519 public key),
 *               sign bit 0; then plain Ed25519 verification (libsodium), which also refuses
 *               non-canonical and small-order encodings.
 *
 * Every signed message starts with a domain label of its own (`signedBytes`), so a signature
 * made for one kind of record can never be passed off as another.
 */
import sodium from 'sodium-native';

export const SIGNATURE_LEN = 64;

const P = (1n << 255n) - 19n;

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if ((e & 1n) === 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

function leToBig(b: Uint8Array): bigint {
  let x = 0n;
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
  return x;
}

function bigToLe(x: bigint, out: Buffer): Buffer {
  for (let i = 0; i < out.length; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/**
 * The Ed25519 public key (sign bit 0) of an X25519 public key, or undefined for a key that has
 * none (u ≡ −1). Public data only, so plain BigInt arithmetic is fine.
 */
export function edwardsFromMontgomery(u: Uint8Array): Buffer | undefined {
  if (u.length !== 32) return undefined;
  const x = leToBig(u) & ((1n << 255n) - 1n);
  if (x >= P) return undefined;
  const den = (x + 1n) % P;
  if (den === 0n) return undefined;
  const y = (((x - 1n + P) % P) * modPow(den, P - 2n, P)) % P;
  return bigToLe(y, Buffer.alloc(32));
}

/** The XEdDSA signing scalar of an X25519 secret key (secure memory; wipe it with `sodium_memzero`). */
function signingScalar(secretKey: Uint8Array): { scalar: Buffer; publicKey: Buffer } {
  const k = sodium.sodium_malloc(64) as Buffer;
  k.fill(0);
  k.set(secretKey.subarray(0, 32));
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  const edE = Buffer.alloc(32);
  sodium.crypto_scalarmult_ed25519_base_noclamp(edE, k.subarray(0, 32));
  const a = sodium.sodium_malloc(32) as Buffer;
  sodium.crypto_core_ed25519_scalar_reduce(a, k);
  sodium.sodium_memzero(k);
  if ((edE[31]! & 0x80) !== 0) sodium.crypto_core_ed25519_scalar_negate(a, a);
  const publicKey = Buffer.alloc(32);
  sodium.crypto_scalarmult_ed25519_base_noclamp(publicKey, a);
  return { scalar: a, publicKey };
}

/**
 * Signs with an X25519 identity. Holds the signing scalar in secure memory for its life; `destroy`
 * wipes it.
 */
export class Signer {
  /** The Ed25519 form of our public key (what receivers compute from the X25519 key). */
  readonly edPublicKey: Buffer;
  private readonly scalar: Buffer;

  constructor(secretKey: Uint8Array) {
    const s = signingScalar(secretKey);
    this.scalar = s.scalar;
    this.edPublicKey = s.publicKey;
  }

  sign(message: Uint8Array): Buffer {
    const sig = Buffer.alloc(SIGNATURE_LEN);
    sodium.extension_tweak_ed25519_sign_detached(sig, message, this.scalar, this.edPublicKey);
    return sig;
  }

  destroy(): void {
    sodium.sodium_memzero(this.scalar);
  }
}

/**
 * Checks signatures against X25519 public keys. The Edwards form of each key is computed once
 * and kept (bounded: the table is cleared when it grows past `maxKeys`).
 */
export class Verifier {
  private readonly edKeys = new Map<string, Buffer | null>();
  private readonly maxKeys: number;
  verified = 0;
  failed = 0;

  constructor(maxKeys = 100_000) {
    this.maxKeys = maxKeys;
  }

  /** True when `signature` is a valid signature of `message` by the holder of `publicKey`. Never throws. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (signature.length !== SIGNATURE_LEN || publicKey.length !== 32) {
      this.failed++;
      return false;
    }
    const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, 32).toString('base64');
    let ed = this.edKeys.get(id);
    if (ed === undefined) {
      if (this.edKeys.size >= this.maxKeys) this.edKeys.clear();
      ed = edwardsFromMontgomery(publicKey) ?? null;
      this.edKeys.set(id, ed);
    }
    let ok = false;
    if (ed !== null) {
      try {
        ok = sodium.crypto_sign_verify_detached(signature, message, ed);
      } catch {
        ok = false;
      }
    }
    if (ok) this.verified++;
    else this.failed++;
    return ok;
  }
}

/** The bytes a signature covers: a domain label (ASCII, NUL-terminated) followed by the body. */
export function signedBytes(label: string, body: Uint8Array): Buffer {
  const l = Buffer.from(`weft-sig:${label}\0`, 'latin1');
  const out = Buffer.allocUnsafe(l.length + body.length);
  l.copy(out, 0);
  out.set(body, l.length);
  return out;
}
