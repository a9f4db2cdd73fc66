/**
 * Revocation entries (issue 19, "Revoking one node"; Nebula's `pki.blocklist`): one entry shuts
 * one router out of the mesh for good. It is signed with the cluster's revocation key, an Ed25519
 * key pair made by `weft revocation-key create`; routers are given its public key
 * (`--revocation-pubkey`) and accept entries signed by it only. The private key stays with the
 * operator: the CLI signs, the daemon only checks.
 *
 *   entry      { peer, at, reason, sig }
 *   peer       the revoked router's peer name (16 hex digits)
 *   at         when it was revoked (ms since the epoch, an integer)
 *   reason     free text, at most MAX_REASON characters
 *   sig        Ed25519 over signedBytes(peer, at, reason) (64 bytes)
 *
 * Key files: the private key is PKCS#8 PEM (mode 0600), the public key is 64 hex digits (raw).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WeftError, describeError } from '../core/errors.js';
import { writeFileAtomicSync } from '../core/atomic-file.js';
import { isPeerName } from '../core/ids.js';
import type { PeerName } from './contracts.js';

export const MAX_REASON = 200;
const LABEL = 'weft revocation v1';
const HEX_KEY = /^[0-9a-f]{64}$/;

export interface RevocationEntry {
  peer: PeerName;
  at: number;
  reason: string;
  sig: Uint8Array;
}

/** What the signature covers: a label, then the fields, unambiguously (JSON array). */
export function signedBytes(peer: PeerName, at: number, reason: string): Buffer {
  return Buffer.from(JSON.stringify([LABEL, peer, at, reason]), 'utf8');
}

/** Why `peer`, `at` and `reason` cannot make an entry (undefined: they can). */
export function entryFieldsProblem(peer: unknown, at: unknown, reason: unknown): string | undefined {
  if (typeof peer !== 'string' || !isPeerName(peer)) return 'peer is not a peer name (16 hex digits)';
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) return 'at is not a non-negative integer';
  if (typeof reason !== 'string' || reason.length > MAX_REASON) return `reason is not a string of at most ${MAX_REASON} characters`;
  return undefined;
}

export function signRevocation(privateKey: KeyObject, peer: PeerName, at: number, reason: string): RevocationEntry {
  const problem = entryFieldsProblem(peer, at, reason);
  if (problem !== undefined) throw new WeftError('ERR_REVOCATION_ENTRY', `cannot sign a revocation of ${JSON.stringify(peer)}: ${problem}`);
  return { peer, at, reason, sig: sign(null, signedBytes(peer, at, reason), privateKey) };
}

/** True when `e` is well formed and signed by `publicKey`. Never throws. */
export function verifyRevocation(publicKey: KeyObject, e: RevocationEntry): boolean {
  if (entryFieldsProblem(e.peer, e.at, e.reason) !== undefined || !(e.sig instanceof Uint8Array) || e.sig.length !== 64) return false;
  try {
    return verify(null, signedBytes(e.peer, e.at, e.reason), publicKey, e.sig);
  } catch {
    return false;
  }
}

/** An Ed25519 public key from 64 hex digits; throws ERR_REVOCATION_KEY naming `where`. */
export function publicKeyFromHex(hex: string, where: string): KeyObject {
  const h = hex.trim().toLowerCase();
  if (!HEX_KEY.test(h)) throw new WeftError('ERR_REVOCATION_KEY', `${where}: the revocation public key must be 64 hex digits (weft revocation-key create prints it)`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(h, 'hex').toString('base64url') }, format: 'jwk' });
}

/** The raw public key as 64 hex digits. */
export function publicKeyHex(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x ?? '', 'base64url').toString('hex');
}

/** `--revocation-pubkey HEX|FILE`: the hex itself, or a file holding it. */
export function loadRevocationPublicKey(value: string): KeyObject {
  if (HEX_KEY.test(value.trim().toLowerCase())) return publicKeyFromHex(value, '--revocation-pubkey');
  let text: string;
  try {
    text = readFileSync(value, 'utf8');
  } catch (err) {
    throw new WeftError('ERR_REVOCATION_KEY', `--revocation-pubkey ${value}: neither 64 hex digits nor a readable file (${describeError(err)})`, { cause: err });
  }
  return publicKeyFromHex(text, `--revocation-pubkey ${value}`);
}

/** Makes a key pair; the private key goes to `file` (0600, created only: an existing file is kept). */
export function createRevocationKey(file: string): { publicKeyHex: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
  writeFileAtomicSync(file, pem, 0o600, { exclusive: true });
  return { publicKeyHex: publicKeyHex(publicKey) };
}

/** The private key of `weft revoke --key FILE`; throws ERR_REVOCATION_KEY naming the file. */
export function loadRevocationPrivateKey(file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file));
  } catch (err) {
    throw new WeftError('ERR_REVOCATION_KEY', `--key ${file}: not a readable private key (${describeError(err)})`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new WeftError('ERR_REVOCATION_KEY', `--key ${file}: an ${key.asymmetricKeyType ?? 'unknown'} key; a revocation key is Ed25519 (weft revocation-key create)`);
  return key;
}

/** An entry as JSON (the API and blocklist.json): the signature in hex. */
export interface RevocationJson {
  peer: string;
  at: number;
  reason: string;
  sig: string;
}

export function entryToJson(e: RevocationEntry): RevocationJson {
  return { peer: e.peer, at: e.at, reason: e.reason, sig: Buffer.from(e.sig).toString('hex') };
}

/** An entry from JSON, or the reason it is not one (the signature is not checked here). */
export function entryFromJson(v: unknown): RevocationEntry | string {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const o = v as Record<string, unknown>;
  const problem = entryFieldsProblem(o.peer, o.at, o.reason);
  if (problem !== undefined) return problem;
  if (typeof o.sig !== 'string' || !/^[0-9a-f]{128}$/.test(o.sig)) return 'sig is not 128 hex digits';
  return { peer: o.peer as string, at: o.at as number, reason: o.reason as string, sig: Buffer.from(o.sig, 'hex') };
}
