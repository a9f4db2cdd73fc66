import type { StatusReport } from '../daemon/status.js';

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

/** Human view of a status report. */
export function formatStatus(s: StatusReport): string {
  const lines: string[] = [];
  lines.push(`weft router ${s.name} "${s.nickname}" (id ${s.id}, pid ${s.pid}, up ${s.uptimeS}s)`);
  lines.push(
    `  listen ${s.listen}   bridge ${s.bridge}   tap ${s.tap}   encryption ${s.mode.encryption}   ` +
      `${s.mode.vnetHdr ? 'vnet_hdr (super-frames)' : 'per-frame'}   udp gso ${s.mode.udpGso ? 'on' : 'off'} gro ${s.mode.udpGro ? 'on' : 'off'}`,
  );
  lines.push(`  MTU: underlay ${s.mtu.underlay}, overlay ${s.mtu.overlay}, datagram ${s.mtu.maxDatagram}`);
  lines.push('');
  if (s.peers.length === 0) {
    lines.push('  no peers yet');
  } else {
    const rows = [['PEER', 'NICKNAME', 'PATH', 'ENDPOINT', 'STATE', 'LAST SEEN', 'TX FRAMES', 'TX BYTES', 'RX FRAMES', 'RX BYTES']];
    for (const p of s.peers) {
      rows.push([
        p.name,
        p.nickname,
        p.path === 'relay' ? `relay via ${p.via ?? '?'}` : p.path,
        p.endpoint ?? '-',
        p.state,
        p.lastSeenMsAgo === null ? 'never' : `${(p.lastSeenMsAgo / 1000).toFixed(1)}s ago`,
        String(p.txFrames),
        bytes(p.txBytes),
        String(p.rxFrames),
        bytes(p.rxBytes),
      ]);
    }
    lines.push(table(rows).replace(/^/gm, '  '));
  }
  lines.push('');
  const m = s.mesh;
  if (m.connections.length > 0) {
    const rows = [['CONNECTION', 'NICKNAME', 'ADDRESS', 'DIRECTION', 'UDP PATH', 'FOR']];
    for (const c of m.connections) rows.push([c.peer, c.nickname, c.address, c.outbound ? 'outbound' : 'inbound', c.pathUp ? 'up' : 'not proven', `${Math.round(c.sinceMs / 1000)}s`]);
    lines.push(table(rows).replace(/^/gm, '  '));
  }
  for (const t of m.targets.filter((x) => x.state !== 'established')) {
    const retry = t.retryInMs === undefined ? '' : `, retry in ${(t.retryInMs / 1000).toFixed(1)}s`;
    lines.push(`  target ${t.address}: ${t.state}${t.lastError === undefined ? '' : ` (${t.lastError})`}${retry}`);
  }
  const keys = m.keys.filter((k) => k.state !== 'established' || k.failures > 0);
  for (const k of keys) lines.push(`  keys with ${k.peer}: ${k.state}, ${k.failures} failures${k.lastError === undefined ? '' : ` (${k.lastError})`}`);
  const closes = Object.entries(m.closes);
  if (closes.length > 0) lines.push(`  connections closed: ${closes.map(([k, n]) => `${k}=${n}`).join('  ')}`);
  lines.push(`  fast path: ${s.fastpath.note}`);
  for (const f of s.fastpath.peers) {
    lines.push(`    ${f.name} (${f.underlay}): ${f.state}, ${f.reason}, for ${(f.sinceMs / 1000).toFixed(1)}s, ${f.switches} switches`);
  }
  lines.push(`  relayed for others: ${s.relayed.datagrams} datagrams / ${bytes(s.relayed.bytes)}`);
  lines.push('');
  const t = s.traffic;
  lines.push(`  TAP  in ${t.tap.rxPackets} frames / ${bytes(t.tap.rxBytes)}   out ${t.tap.txPackets} frames / ${bytes(t.tap.txBytes)}`);
  lines.push(`  UDP  in ${t.udp.rxPackets} datagrams / ${bytes(t.udp.rxBytes)}   out ${t.udp.txPackets} datagrams / ${bytes(t.udp.txBytes)}`);
  lines.push(`  MACs learned ${t.macs}   unicast ${t.router.unicast}   flooded ${t.router.flooded}`);
  const drops = Object.entries(s.drops).filter(([, n]) => n > 0);
  lines.push(drops.length === 0 ? '  drops: none' : `  drops: ${drops.map(([k, n]) => `${k}=${n}`).join('  ')}`);
  lines.push(`  memory: rss ${bytes(s.memory.rssBytes)}, heap ${bytes(s.memory.heapUsedBytes)}; reassembly ${s.reassembly.inUse} in use, ${bytes(s.reassembly.memoryBytes)}`);
  return lines.join('\n');
}
