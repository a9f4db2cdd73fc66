/**
 * `weft revocation-key create` and `weft revoke` (issue 19, revoking one node). The CLI signs
 * the entry with the private key itself; only the signed entry goes to the router (POST
 * /v1/revoke), which checks it against its --revocation-pubkey and gossips it.
 */
import type { Command } from 'commander';
import { callApi } from '../api/client.js';
import type { RevokeRequest, RevokeResponse, StatusReport } from '../api/types.js';
import { ConfigError } from '../core/errors.js';
import { didYouMean } from '../core/did-you-mean.js';
import { isPeerName } from '../core/ids.js';
import { MAX_REASON, createRevocationKey, entryToJson, loadRevocationPrivateKey, signRevocation } from '../mesh/revocation.js';

/** A peer name, or a nickname resolved among the peers the router knows (ConfigError when none or several). */
export function resolvePeer(peer: string, known: readonly { name: string; nickname: string }[]): string {
  if (isPeerName(peer)) return peer;
  const matches = known.filter((k) => k.nickname === peer);
  if (matches.length === 1) return matches[0]!.name;
  if (matches.length > 1) throw new ConfigError([`the nickname "${peer}" is ambiguous (${matches.map((m) => m.name).join(', ')}); give the peer name`], 'weft revoke');
  const near = didYouMean(peer, known.map((k) => k.nickname));
  throw new ConfigError([`no peer named "${peer}" in this router's topology${near === undefined ? '' : ` (did you mean "${near}"?)`}; give a nickname it knows or the 16-hex-digit peer name`], 'weft revoke');
}

async function revoke(peer: string, opts: { key: string; reason: string; socket: string }, now: () => number): Promise<void> {
  if (opts.reason.length > MAX_REASON) throw new ConfigError([`--reason: at most ${MAX_REASON} characters`], 'weft revoke');
  const key = loadRevocationPrivateKey(opts.key);
  let name = peer;
  if (!isPeerName(peer)) {
    const report = (await callApi(opts.socket, 'GET', '/v1/status')) as StatusReport;
    name = resolvePeer(peer, [{ name: report.name, nickname: report.nickname }, ...report.mesh.peers.map((p) => ({ name: p.name, nickname: p.nickname }))]);
  }
  const entry = signRevocation(key, name, now(), opts.reason);
  const request: RevokeRequest = entryToJson(entry);
  const r = (await callApi(opts.socket, 'POST', '/v1/revoke', request)) as RevokeResponse;
  process.stdout.write(r.added ? `revoked: ${r.peer}${name === peer ? '' : ` (${peer})`}; the mesh shuts it out within seconds\n` : `already revoked: ${r.peer}\n`);
}

export function addRevocationCommands(program: Command, defaultSocket: string, now: () => number = Date.now): void {
  const key = program.command('revocation-key').description('the key pair that signs revocations (the routers get its public key: --revocation-pubkey)');
  key
    .command('create')
    .description('make an Ed25519 key pair: the private key goes to --out (mode 0600; keep it off the routers), the public key is printed (hex)')
    .requiredOption('--out <file>', 'where the private key is written (must not exist)')
    .action((opts: { out: string }) => {
      const r = createRevocationKey(opts.out);
      process.stdout.write(`${r.publicKeyHex}\n`);
    });

  program
    .command('revoke')
    .description('shut one router out of the mesh for good: the entry is signed here and gossiped by the routers (the private key never leaves this command)')
    .argument('<peer>', 'peer name or nickname (nicknames are resolved by the router)')
    .requiredOption('--key <file>', 'the private key of `weft revocation-key create`')
    .option('--reason <text>', 'why (kept in the entry, shown in status)', '')
    .option('--socket <path>', 'API socket of the router', defaultSocket)
    .action(async (peer: string, opts: { key: string; reason: string; socket: string }) => revoke(peer, opts, now));
}
