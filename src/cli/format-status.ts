import { totalTraffic, type CryptoBatchStatus, type CryptoStatus, type EndpointsStatus, type IpamStatus, type KubernetesStatus, type PolicyStatus, type StatusReport } from '../api/types.js';
import { ago, connectedTarget, duration, splitDrops } from './status-notes.js';

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** The sleeve's crypto threads and how much of the sealed and opened bytes ran on several. */
function cryptoLine(c: CryptoStatus): string {
  if (c.threads === 0) return 'crypto: one message at a time on the router\'s thread (--crypto-threads 0)';
  const share = (b: CryptoBatchStatus): string => (b.bytes > 0 ? `${Math.round((100 * b.pooledBytes) / b.bytes)}%` : '-');
  const per = (b: CryptoBatchStatus): string => (b.runs > 0 ? (b.jobs / b.runs).toFixed(1) : '-');
  const failed = c.sealFailures > 0 ? `; ${c.sealFailures} seals failed` : '';
  return (
    `crypto: batches on ${c.threads} thread${c.threads === 1 ? '' : 's'}; seals ${per(c.seals)} per batch, ${share(c.seals)} of bytes on several threads; ` +
    `opens ${per(c.opens)} per batch, ${share(c.opens)} on several${failed}`
  );
}

/** Human view of a status report. */
export function formatStatus(s: StatusReport): string {
  const lines: string[] = [];
  lines.push(`weft router ${s.name} "${s.nickname}" (id ${s.id}, pid ${s.pid}, up ${s.uptimeS}s)`);
  lines.push(`  weft ${s.build.version}${s.build.commit === undefined ? '' : ` (commit ${s.build.commit})`}, node ${s.build.node}, mesh protocol ${s.build.meshProtocolMin}..${s.build.meshProtocolMax}, sleeve protocol ${s.build.sleeveProtocol}`);
  lines.push(
    `  listen ${s.listen}   bridge ${s.bridge}   tap ${s.tap}   encryption ${s.mode.encryption}   ` +
      `${s.mode.vnetHdr ? 'vnet_hdr (super-frames)' : 'per-frame'}   tap reads ${s.mode.tapReads}   udp gso ${s.mode.udpGso ? 'on' : 'off'} gro ${s.mode.udpGro ? 'on' : 'off'}   ` +
      `udp coalescing ${s.mode.udpCoalesce ? 'on' : 'off'}`,
  );
  lines.push(`  MTU: underlay ${s.mtu.underlay}, overlay ${s.mtu.overlay}, datagram ${s.mtu.maxDatagram}`);
  if (s.crypto !== undefined) lines.push(`  ${cryptoLine(s.crypto)}`);
  lines.push('');
  if (s.peers.length === 0) {
    lines.push('  no peers yet');
  } else {
    const rows = [['PEER', 'NICKNAME', 'PATH', 'ENDPOINT', 'STATE', 'LAST SEEN', 'TX FRAMES', 'TX BYTES', 'RX FRAMES', 'RX BYTES']];
    for (const p of s.peers) {
      rows.push([
        p.name,
        p.nickname,
        p.path === 'relay' ? `relay via ${p.via ?? '?'}` : p.path === 'direct' && p.pathReason.startsWith('punched (') ? 'direct (punched)' : p.path,
        p.endpoint ?? '-',
        p.state,
        p.lastSeenMsAgo === null ? 'never' : ago(p.lastSeenMsAgo),
        String(p.txFrames),
        bytes(p.txBytes),
        String(p.rxFrames),
        bytes(p.rxBytes),
      ]);
    }
    lines.push(table(rows).replace(/^/gm, '  '));
    // Why each peer is on its path (the overlay switch's reason), for how long, and how often it moved.
    for (const p of s.peers) {
      const since = p.pathSinceMs === null ? '' : ` for ${duration(p.pathSinceMs)}`;
      const rtt = p.rttMs === null || p.rttMs === undefined ? '' : `; rtt ${p.rttMs} ms`;
      lines.push(`  ${p.nickname || p.name}: ${p.path}${since}, ${p.pathSwitches} switches: ${p.pathReason}${rtt}`);
      const pu = p.punch;
      if (pu !== null && pu !== undefined) {
        const what = pu.state === 'punched' ? `punched ${pu.endpoint}` : pu.state === 'failed' ? `failed: ${pu.why}` : 'probing';
        lines.push(`    hole punching: attempt ${pu.attempts}, ${what} (${ago(pu.sinceMs)})`);
        for (const c of pu.candidates) {
          const crtt = c.rttMs === null ? '' : `, rtt ${c.rttMs} ms`;
          lines.push(`      ${c.endpoint} (${c.kind}): ${c.result}; ${c.probes} probes, ${c.replies} answers${crtt}`);
        }
      }
    }
  }
  lines.push('');
  const m = s.mesh;
  if (m.connections.length > 0) {
    const rows = [['CONNECTION', 'NICKNAME', 'ADDRESS', 'DIRECTION', 'UDP PATH', 'FOR', 'PROTOCOL', 'RELEASE']];
    for (const c of m.connections) {
      rows.push([c.peer, c.nickname, c.address, c.outbound ? 'outbound' : 'inbound', c.pathUp ? 'up' : 'not proven', duration(c.sinceMs), `${c.protocol}`, c.release ?? '-']);
    }
    lines.push(table(rows).replace(/^/gm, '  '));
  }
  // A target whose peer is connected anyway (it dialled us) waits for nothing: not shown.
  for (const t of m.targets.filter((x) => x.state !== 'established' && !connectedTarget(x, m.connections))) {
    const retry = t.retryInMs === undefined ? '' : `, retry in ${duration(t.retryInMs)}`;
    const resolved = t.resolved === undefined ? '' : ` (${t.resolved})`;
    const state = t.state === 'left' ? `left to the punched path after ${t.attempts} failures` : t.state;
    lines.push(`  target ${t.address}${resolved}${t.discovered === true ? ' (from its Node)' : ''}: ${state}${t.lastError === undefined ? '' : ` (${t.lastError})`}${retry}`);
  }
  const keys = m.keys.filter((k) => k.state !== 'established' || k.failures > 0);
  for (const k of keys) {
    const age = k.keyAgeMs === undefined ? '' : `, key age ${Math.round(k.keyAgeMs / 1000)}s, expires in ${Math.round((k.expiresInMs ?? 0) / 1000)}s`;
    lines.push(`  keys with ${k.peer}: ${k.state}${age}, ${k.failures} failures${k.lastError === undefined ? '' : ` (${k.lastError})`}`);
  }
  lines.push(...formatEndpoints(m.endpoints));
  const closes = Object.entries(m.closes);
  if (closes.length > 0) lines.push(`  connections closed: ${closes.map(([k, n]) => `${k}=${n}`).join('  ')}`);
  const refused = Object.entries(m.refused ?? {});
  if (refused.length > 0) lines.push(`  messages refused (dropped, connections kept): ${refused.map(([k, n]) => `${k}=${n}`).join('  ')}`);
  const channels = m.channels.map((c) => {
    const sent = totalTraffic(c.sent);
    const received = totalTraffic(c.received);
    return `${c.channel} out ${sent.messages} (${bytes(sent.bytes)}) in ${received.messages} (${bytes(received.bytes)})`;
  });
  if (channels.length > 0) lines.push(`  gossip channels, messages: ${channels.join(', ')}`);
  lines.push(`  fast path: ${s.fastpath.note}`);
  for (const f of s.fastpath.peers) {
    const since = f.sinceMs <= 0 && f.switches === 0 ? '' : `, for ${duration(f.sinceMs)}, ${f.switches} switches`;
    lines.push(`    ${f.name} (${f.underlay}): ${f.state}, ${f.reason}${since}`);
  }
  const v = s.fastpath.vxlanPort;
  if (v !== undefined) {
    lines.push(`    VXLAN port ${v.port} (nftables ${v.table}) open to ${v.peers.length === 0 ? 'no one' : v.peers.join(', ')}; refused from others: ${v.refused.packets}; pods' frames to probe addresses dropped: ${v.podProbes.packets}`);
  }
  if (s.fastpath.probes !== undefined) lines.push(`    probes accepted: ${s.fastpath.probes.accepted} (drops below, fastpath.probe.*)`);
  if (s.ipam === undefined) lines.push('  IPAM: off');
  else {
    const r = s.ipam.ranges.map((x) => `${x.range}: owned ${x.owned}, free ${x.free}, allocated ${x.allocated}, quarantined ${x.quarantined}`).join('; ');
    lines.push(`  IPAM: ${s.ipam.ready.ok ? 'ready' : `not ready (${s.ipam.ready.reason ?? '?'})`}, ${s.ipam.allocations} allocations${r === '' ? '' : `; ${r}`}`);
  }
  if (s.pods !== undefined) {
    const p = s.pods;
    const dropping = p.pods.filter((x) => x.dropped > 0).map((x) => `${x.containerId ?? x.port}/${x.ifName ?? '?'}=${x.dropped}`);
    lines.push(`  pods guarded: ${p.pods.length} (${p.table})${dropping.length === 0 ? '' : `; dropped from: ${dropping.join('  ')}`}`);
    if (p.unknownPorts.length > 0) lines.push(`    ports with no attachment (all dropped): ${p.unknownPorts.join(' ')}`);
    if (p.problem !== null) lines.push(`    problem: ${p.problem}`);
  }
  {
    const v = s.services;
    const bad = v.settings.filter((x) => !x.ok).map((x) => `${x.name}=${x.value ?? 'missing'}`);
    const state = v.enabled ? 'set up by the router' : 'not set up by the router (--service-bridge)';
    lines.push(`  Services bridge ${v.bridge}: ${state}; ${bad.length === 0 ? 'bridge netfilter and forwarding on' : `off: ${bad.join(' ')}`}; hairpin on ${v.hairpin.on.length}/${v.hairpin.ports} veth ports`);
    for (const p of v.problems) lines.push(`    problem: ${p}`);
  }
  lines.push(policySummary(s.policy));
  if (s.kubernetes !== undefined) lines.push(...formatKubernetes(s.kubernetes));
  const revocation = formatRevocation(s.revocation);
  if (revocation !== undefined) lines.push(revocation);
  lines.push(`  relayed for others: ${s.relayed.datagrams} datagrams / ${bytes(s.relayed.bytes)}`);
  lines.push('');
  const t = s.traffic;
  const superFrames = t.router.toTapSuperFrames > 0 ? ` (${t.router.toTapSuperFrames} USO super-frames of ${t.router.toTapCoalesced} UDP frames)` : '';
  lines.push(`  TAP  in ${t.tap.rxPackets} frames / ${bytes(t.tap.rxBytes)}   out ${t.tap.txPackets} frames / ${bytes(t.tap.txBytes)}${superFrames}`);
  lines.push(`  UDP  in ${t.udp.rxPackets} datagrams / ${bytes(t.udp.rxBytes)}   out ${t.udp.txPackets} datagrams / ${bytes(t.udp.txBytes)}`);
  lines.push(`  MACs learned ${t.macs}   unicast ${t.router.unicast}   flooded ${t.router.flooded}`);
  const drops = splitDrops(s.drops);
  lines.push(drops.unexpected.length === 0 ? '  drops: none' : `  drops: ${drops.unexpected.map(([k, n]) => `${k}=${n}`).join('  ')}`);
  if (drops.expected.length > 0) {
    lines.push('  expected drops (a healthy cluster has these):');
    for (const [k, n, why] of drops.expected) lines.push(`    ${k}=${n}: ${why}`);
  }
  lines.push(`  memory: rss ${bytes(s.memory.rssBytes)}, heap ${bytes(s.memory.heapUsedBytes)}; reassembly ${s.reassembly.inUse} in use, ${bytes(s.reassembly.memoryBytes)}`);
  return lines.join('\n');
}

/** Our own endpoints, what peers observe of us, and hole punching (issue 18). */
export function formatEndpoints(e: EndpointsStatus | undefined): string[] {
  if (e === undefined) return [];
  const lines: string[] = [];
  const candidates = e.candidates.map((c) => `${c.endpoint} (${c.kind})`).join(', ');
  lines.push(`  endpoints: ${candidates === '' ? 'none' : candidates}; NAT: ${e.nat}`);
  if (e.observed.length > 0) {
    lines.push(`    observed by peers: ${e.observed.map((o) => `${o.endpoint} by ${o.by} ${ago(o.agoMs)}`).join(', ')}`);
  }
  for (const p of e.punches) {
    const last = p.lastMsAgo === null ? '' : `, last ${ago(p.lastMsAgo)}`;
    lines.push(`    punching ${p.peer}: ${p.state}, candidates sent ${p.offersSent}, received ${p.offersReceived}${last}`);
  }
  for (const s of e.stun ?? []) {
    const at = s.resolved === '' || s.resolved === s.server.slice(0, s.server.lastIndexOf(':')).replace(/^\[|\]$/g, '') ? '' : ` (${s.resolved})`;
    const what = s.state === 'mapped' ? `sees us at ${s.mapped}` : s.state === 'failed' ? `failed: ${s.lastError}` : 'waiting';
    lines.push(`    STUN ${s.server}${at}: ${what}; requests ${s.requests}, answers ${s.answers}`);
  }
  if (e.hint !== '') lines.push(`    hint: ${e.hint}`);
  return lines;
}

/** `weft status`'s one line on NetworkPolicy. */
export function policySummary(p: PolicyStatus | undefined): string {
  if (p === undefined) return '  NetworkPolicy: off';
  const src = p.source === null ? 'no source' : `${p.source.kind} ${p.source.synced ? 'synced' : 'not synced yet'}`;
  const dropped = p.policies.reduce((a, x) => a + x.dropped, 0);
  const trouble = [p.problem, ...(p.source?.error == null ? [] : [p.source.error]), ...p.bridgeNetfilter].filter((x): x is string => x !== null);
  return `  NetworkPolicy: ${p.policies.length} polic${p.policies.length === 1 ? 'y' : 'ies'} in force (${src}), ${dropped} packets dropped; weft status policy${trouble.length === 0 ? '' : `; PROBLEM: ${trouble.join('; ')}`}`;
}

/** `weft status policy`: the policies in force on this node, the local pods each selects, their counters. */
export function formatPolicyStatus(p: PolicyStatus | undefined): string {
  if (p === undefined) return 'NetworkPolicy: off on this router (--network-policy off, or auto with neither Kubernetes mode nor --policy-file)';
  const lines: string[] = [];
  const s = p.source;
  lines.push(`NetworkPolicy: table ${p.table}; source ${s === null ? 'none' : `${s.kind} (${s.where}), ${s.synced ? 'synced' : 'not synced yet'}`}`);
  if (s?.error != null) lines.push(`  source error: ${s.error}`);
  for (const x of s?.problems ?? []) lines.push(`  skipped ${x.where}: ${x.problem}`);
  const last = p.lastApply === null ? 'none yet' : `${p.lastApply.kind} at ${new Date(p.lastApply.at).toISOString()} (${p.lastApply.ms} ms)`;
  lines.push(`  applied: ${p.applies.full} full, ${p.applies.elements} element updates; last ${last}; failures ${p.failures}`);
  if (p.dropped.ingress !== null || p.dropped.egress !== null) lines.push(`  dropped: ingress ${p.dropped.ingress ?? '-'}, egress ${p.dropped.egress ?? '-'}`);
  for (const b of p.bridgeNetfilter) lines.push(`  bridge netfilter: ${b}`);
  if (p.problem !== null) lines.push(`  problem: ${p.problem}`);
  if (p.policies.length === 0) lines.push('  no policy in force on this node');
  for (const x of p.policies) {
    const types = [x.ingress ? 'ingress' : '', x.egress ? 'egress' : ''].filter((t) => t !== '').join('+') || 'none';
    lines.push(`  ${x.namespace}/${x.name}  [${types}]  allowed ${x.allowed}  dropped ${x.dropped}`);
    lines.push(`    selects: ${x.selected.length === 0 ? 'no pod on this node' : x.selected.join(' ')}`);
  }
  return lines.join('\n');
}

/** `weft ipam status`: readiness, bootstrap, per range who owns what and this router's counts. */
export function formatIpamStatus(s: IpamStatus): string {
  const lines: string[] = [];
  lines.push(`IPAM of ${s.self}: ${s.ready.ok ? 'ready' : `not ready (${s.ready.reason ?? 'unknown'})`}${s.fenced ? ', FENCED: this peer was forgotten' : ''}`);
  if (s.bootstrap.mode === 'seeds') lines.push(`  bootstrap: seeds ${s.bootstrap.seeds.join(', ')}`);
  else if (s.bootstrap.mode === 'kubernetes') {
    const b = s.blocks;
    const c = b?.counters;
    lines.push(`  ownership: blocks as Leases, ${b?.source ?? 'the API server'}${b === undefined ? '' : `; ${b.synced ? 'synced' : 'NOT SYNCED yet'}`}${b?.lastError === undefined ? '' : `; last error: ${b.lastError}`}`);
    if (c !== undefined) {
      lines.push(`  blocks: claimed ${c.claimed} (lost races ${c.claimRaces}), reclaimed ${c.reclaimed} (lost races ${c.reclaimRaces}), taken away ${c.lost}, failed calls ${c.failures}, Leases ignored ${c.ignored}`);
    }
  } else if (s.bootstrap.mode === 'join') {
    lines.push('  bootstrap: join (the ring comes from a member)');
  } else {
    const w = s.bootstrap.waiting.map((x) => `${x.peer} (${x.initPeers})`).join(', ');
    lines.push(`  bootstrap: ${s.bootstrap.initPeers} initial peers${w === '' ? '' : `; waiting: ${w}`}`);
  }
  for (const sp of s.spaces) {
    lines.push(`  ${sp.range}:`);
    if (sp.genesis !== undefined && sp.genesis.waitingFor.length > 0) lines.push(`    waiting for seeds to adopt the ring: ${sp.genesis.waitingFor.join(', ')}`);
    for (const o of sp.owners) {
      const f = o.forgotten === undefined ? '' : ` (forgotten; heir ${o.forgotten.heir ?? 'none yet'})`;
      lines.push(`    ${o.peer}${o.peer === s.self ? ' (self)' : ''}: ${o.size} addresses in ${o.ranges.join(', ')}${f}`);
    }
    const own = sp.own;
    lines.push(`    here: owned ${own.owned}, free ${own.free}, allocated ${own.allocated}, reserved ${own.reserved}, quarantined ${own.quarantined}, held after reclaim ${own.held}`);
    if (sp.blocks !== undefined) {
      const b = sp.blocks;
      lines.push(`    blocks /${b.blockPrefix} held here (${b.mine.length}): ${b.mine.length === 0 ? 'none' : b.mine.join(', ')}`);
      if (b.others.length > 0) lines.push(`    held elsewhere: ${b.others.map((o) => `${o.holder} ${o.blocks}`).join(', ')}; free ${b.free}`);
      else lines.push(`    held elsewhere: none; free ${b.free}`);
      if (b.conflicts.length > 0) lines.push(`    BLOCK CONFLICTS (another router holds them; nothing is handed out there): ${b.conflicts.map((x) => `${x.block} held by ${x.holder}`).join(', ')}`);
    }
    if (sp.conflicts.length > 0) lines.push(`    CONFLICTS (allocated here, not owned here): ${sp.conflicts.join(', ')}`);
    const u = sp.unconfirmed;
    if (u.count > 0) lines.push(`    NOT TRUSTED here (${u.count}: the writer did not own the space as far as this router saw): ${u.entries.map((x) => `${x.range} to ${x.owner} by ${x.writer}`).join(', ')}`);
    if (sp.pendingAsk.asking !== undefined) lines.push(`    asking ${sp.pendingAsk.asking} for space; ${sp.pendingAsk.waitingAllocations} allocations waiting`);
  }
  lines.push(`  allocations: ${s.allocations}; donations given ${s.counters.donationsGiven}, received ${s.counters.donationsReceived}; ring conflicts ${s.ringConflicts.count}${s.ringConflicts.last === undefined ? '' : ` (last: ${s.ringConflicts.last})`}`);
  const c = s.counters;
  const trust = [
    ['records refused: bad signature', c.refusedSignature],
    ['version past the bound', c.refusedVersion],
    ['not the writer\'s to write', c.refusedRecord],
    ['entries not trusted on arrival', c.unconfirmed],
    ['donations not used', c.unusableGrants],
    ['entries written back over a taker', c.defended],
    ['double spends', c.doubleSpends],
    ['space lost at the version bound', c.defenceImpossible],
    ['tombstones of this router cancelled', c.revived],
    ['reclaimed space given back', c.givenBack],
  ].filter(([, n]) => (n as number) > 0);
  if (trust.length > 0) lines.push(`  trust: ${trust.map(([k, n]) => `${k} ${n}`).join('; ')}`);
  return lines.join('\n');
}

/** The Kubernetes section of `weft status`. */
function formatKubernetes(k: KubernetesStatus): string[] {
  const out: string[] = [];
  out.push(`  Kubernetes: Node ${k.node} (namespace ${k.namespace}) via ${k.server}; ${k.synced ? 'synced' : 'not synced yet'}, ${k.nodesSeen} Nodes seen, ${k.peersFromNodes.length} peers from Nodes, ${k.nodesDeleted} deleted Nodes forgotten`);
  for (const w of k.deletedButReachable) out.push(`    Node ${w.node} deleted, but its router ${w.peer} is still reachable: forgotten (its blocks taken) once it is not`);
  for (const p of k.peersFromNodes) out.push(`    ${p.node}: ${p.peer} at ${p.endpoint}${p.version === '' ? '' : ` (${p.version})`}`);
  out.push(`    own Node: ${k.ownNode}${k.ownNodeProblem === '' ? '' : ` (${k.ownNodeProblem})`}; annotations written ${k.publishes}, failed ${k.publishFailures}`);
  const w = k.watch;
  out.push(
    `    watch: ${w.watching ? 'open' : 'closed'} at resourceVersion ${w.resourceVersion === '' ? '-' : w.resourceVersion}; lists ${w.lists}, relists ${w.relists}, restarts ${w.watchRestarts}, 410 Gone ${w.expired}, errors ${w.errors}, bad events ${w.badEvents}` +
      (w.lastError === null ? '' : `; last error: ${w.lastError}`),
  );
  if (k.invalidNodes > 0) out.push(`    Nodes refused: ${k.invalidNodes}${k.invalid.length === 0 ? '' : ` (now: ${k.invalid.map((x) => `${x.node}: ${x.problem}`).join('; ')})`}`);
  return out;
}

/** The blocklist in one line; nothing when there is no key and nothing was refused. */
export function formatRevocation(r: StatusReport['revocation']): string | undefined {
  if (r === undefined || (!r.enabled && r.refused === 0)) return undefined;
  const entries = r.entries.map((e) => `${e.nickname === '' ? e.peer : `${e.nickname} (${e.peer})`} since ${new Date(e.at).toISOString()}${e.reason === '' ? '' : ` "${e.reason}"`}`);
  const refused = Object.entries(r.refusedBy).map(([k, n]) => `${k}=${n}`).join(' ');
  const key = r.enabled ? `key ${r.publicKey.slice(0, 16)}…` : 'no --revocation-pubkey';
  return `  revocation: ${key}; ${entries.length === 0 ? 'nobody revoked' : `revoked: ${entries.join(', ')}`}${r.refused === 0 ? '' : `; entries refused: ${r.refused} (${refused})`}`;
}
