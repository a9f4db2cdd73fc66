/**
 * The cluster secret and, while it is rotated, the others accepted (`--secret-file-accept`).
 * Every use of the secret accepts any of them:
 *
 *   mesh handshake (Noise PSK)     dialled with the secret; inbound tried with each in turn
 *   pair keys (handshake prologue) started with the secret's; answered with any
 *   IPAM cluster id                pinned in the state dir at first use (`ipam-cluster-id`), so a
 *                                  rotation does not make the ring or the state file foreign
 *
 * Nothing else is keyed by it (the sleeve's keys come from pair keys).
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../core/atomic-file.js';
import { WeftError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { clusterKeyFromSecret } from '../router/crypto/cluster-secret.js';
import { stateClusterId } from '../ipam/state-file.js';

export const CLUSTER_ID_FILE = 'ipam-cluster-id';
const CLUSTER_ID = /^[0-9a-f]{16}$/;

/** Reads a secret file into the 32-byte cluster key; ERR_SECRET_FILE names the file. */
export function readSecretFile(file: string, log: Logger): Buffer {
  let data: Buffer;
  try {
    accessSync(file, constants.R_OK);
    data = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : describeError(err);
    throw new WeftError('ERR_SECRET_FILE', `cannot read the secret file ${file}: ${why}`, { cause: err });
  }
  if ((statSync(file).mode & 0o077) !== 0) {
    log.warn('the secret file is readable by group or others; chmod 600 it', { file });
  }
  return clusterKeyFromSecret(data, file);
}

/** A 32-byte key for one purpose from the cluster key. */
export function derive(clusterKey: Buffer, label: string): Buffer {
  return createHmac('sha256', clusterKey).update(label).digest();
}

export function meshPsk(clusterKey: Buffer): Buffer {
  return derive(clusterKey, 'weft mesh psk v1');
}

export function pairPrologue(clusterKey: Buffer): Buffer {
  return Buffer.concat([Buffer.from('weft pair v1\0'), derive(clusterKey, 'weft pair prologue v1')]);
}

/** The IPAM cluster id a secret gives (how every release before pinning made it). */
export function clusterIdOf(clusterKey: Buffer): string {
  return createHmac('sha256', clusterKey).update('weft ipam cluster id v1').digest('hex').slice(0, 16);
}

/**
 * The IPAM cluster id of this router: the pinned one (`<stateDir>/ipam-cluster-id`) when there
 * is one; else that of the state file when one of `keys` gives it (a router of a release before
 * pinning, mid-rotation); else that of the first key. Pinned when it was not.
 */
export function ipamClusterId(stateDir: string, keys: readonly Buffer[], log: Logger): string {
  const pin = join(stateDir, CLUSTER_ID_FILE);
  if (existsSync(pin)) {
    const text = readFileSync(pin, 'utf8').trim();
    if (!CLUSTER_ID.test(text)) throw new WeftError('ERR_CLUSTER_ID_FILE', `${pin} does not hold a cluster id (16 hex digits); copy it from another router's state directory`);
    return text;
  }
  const ids = keys.map(clusterIdOf);
  let id = ids[0]!;
  const state = join(stateDir, 'ipam.state');
  if (existsSync(state)) {
    const found = stateClusterId(readFileSync(state));
    if (found !== undefined && ids.includes(found)) id = found;
  }
  writeFileAtomicSync(pin, `${id}\n`, 0o644);
  log.info('IPAM cluster id pinned (a rotation of the cluster secret keeps it)', { file: pin, clusterId: id });
  return id;
}
