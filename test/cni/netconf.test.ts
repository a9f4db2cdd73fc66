/** Network configuration validation: defaults, each problem named, all problems gathered. */
import { describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/errors.js';
import { DEFAULT_JOURNAL_DIR, DEFAULT_SOCKET, KNOWN_KEYS, parseNetConf, parseRouteDst } from '../../src/cni/netconf.js';

const base = { cniVersion: '1.0.0', name: 'weft', type: 'weft' };

function problem(raw: unknown): { code: number; msg: string } {
  try {
    parseNetConf(raw);
  } catch (err) {
    if (err instanceof CniError) return { code: err.cniCode, msg: err.message };
    throw err;
  }
  throw new Error('no error');
}

describe('parseNetConf', () => {
  it('fills defaults', () => {
    expect(parseNetConf(base)).toEqual({ ...base, socket: DEFAULT_SOCKET, journalDir: DEFAULT_JOURNAL_DIR, validAttachments: [] });
    expect(DEFAULT_SOCKET).toBe('/run/weft/weft.sock');
  });

  it('keeps what it is given, runtime keys included', () => {
    const c = parseNetConf({
      ...base,
      socket: '/tmp/s.sock',
      journalDir: '/tmp/j',
      mtu: 1400,
      dns: { nameservers: ['10.96.0.10', 'fd00::a'], domain: 'cluster.local', search: ['a.svc'], options: ['ndots:5'] },
      runtimeConfig: { portMappings: [] },
      args: { cni: {} },
      prevResult: { cniVersion: '1.0.0' },
      'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }],
    });
    expect(c).toMatchObject({ socket: '/tmp/s.sock', journalDir: '/tmp/j', mtu: 1400, prevResult: { cniVersion: '1.0.0' }, validAttachments: [{ containerID: 'a', ifname: 'eth0' }] });
    expect(c.dns).toEqual({ nameservers: ['10.96.0.10', 'fd00::a'], domain: 'cluster.local', search: ['a.svc'], options: ['ndots:5'] });
  });

  it('drops an empty dns', () => {
    expect(parseNetConf({ ...base, dns: {} }).dns).toBeUndefined();
  });

  it.each([
    [{ ...base, cniVersion: '0.3.1' }, 1, /0.3.1/],
    [{ ...base, cniVersion: '2.0.0' }, 1, /2.0.0/],
    [{ ...base, ipam: {} }, 2, /ipam is not supported/],
    [{ ...base, name: undefined }, 7, /name is missing/],
    [{ ...base, name: '-x' }, 7, /name "-x" must start/],
    [{ ...base, name: 'a b' }, 7, /name "a b"/],
    [{ ...base, type: 3 }, 7, /type is missing/],
    [{ ...base, socket: 7 }, 7, /socket must be an absolute path, not 7/],
    [{ ...base, journalDir: 'rel' }, 7, /journalDir must be an absolute path/],
    [{ ...base, mtu: 1400.5 }, 7, /mtu must be an integer/],
    [{ ...base, mtu: 70000 }, 7, /mtu/],
    [{ ...base, mtu: '1400' }, 7, /mtu/],
    [{ ...base, dns: [] }, 7, /dns must be an object/],
    [{ ...base, dns: { nameservers: ['x'] } }, 7, /dns.nameservers\[0\] \("x"\) is not an IP address/],
    [{ ...base, dns: { nameservers: '1.1.1.1' } }, 7, /dns.nameservers must be an array/],
    [{ ...base, dns: { domain: 5 } }, 7, /dns.domain must be a string/],
    [{ ...base, dns: { search: [''] } }, 7, /dns.search\[0\] must be a non-empty string/],
    [{ ...base, 'cni.dev/valid-attachments': {} }, 7, /cni.dev\/valid-attachments must be an array/],
    [null, 6, /must be a JSON object/],
    [{ name: 'weft', type: 'weft' }, 1, /cniVersion is missing/],
    [{ ...base, ipMasq: false }, 7, /ipMasq false cannot be honoured: the router always masquerades pod traffic leaving the cluster's ranges/],
    [{ ...base, ipMasq: 'yes' }, 7, /ipMasq "yes" cannot be honoured/],
    [{ ...base, isGateway: false }, 7, /isGateway false cannot be honoured: the router's bridge always holds the pods' gateway/],
    [{ ...base, isDefaultGateway: false }, 7, /isDefaultGateway false cannot be honoured.*"defaultRoute": false/],
    [{ ...base, bridge: 'cni0' }, 7, /bridge \(a bridge-plugin key\) cannot be honoured: the router owns the pods' bridge/],
    [{ ...base, hairpinMode: true }, 7, /hairpinMode \(a bridge-plugin key\)/],
    [{ ...base, promiscMode: true }, 7, /promiscMode/],
    [{ ...base, vlan: 5 }, 7, /vlan \(a bridge-plugin key\)/],
    [{ ...base, forceAddress: true }, 7, /forceAddress/],
    [{ ...base, macspoofchk: true }, 7, /macspoofchk/],
    [{ ...base, enabledad: true }, 7, /enabledad/],
    [{ ...base, frob: 1 }, 7, /unknown key "frob" \(weft accepts cniVersion, .*defaultRoute.*, and keys starting with cni.dev\/\)/],
    [{ ...base, frob: 1, nicknack: 2 }, 7, /unknown keys "frob", "nicknack"/],
    [{ ...base, routes: {} }, 7, /routes must be an array/],
    [{ ...base, routes: ['10.0.0.0/8'] }, 7, /routes\[0\] must be an object/],
    [{ ...base, routes: [{ gw: '10.0.0.1' }] }, 7, /routes\[0\].dst must be a CIDR prefix string/],
    [{ ...base, routes: [{ dst: '10.0.0.0/8' }, { dst: '10.1.2.3' }] }, 7, /routes\[1\].dst "10.1.2.3" is not a CIDR prefix/],
    [{ ...base, routes: [{ dst: '10.1.0.0/8' }] }, 7, /routes\[0\].dst "10.1.0.0\/8" has host bits set/],
    [{ ...base, routes: [{ dst: '10.0.0.0/33' }] }, 7, /routes\[0\].dst "10.0.0.0\/33" has a prefix length above 32/],
    [{ ...base, routes: [{ dst: '10.0.0.0/8', gw: 'fd00::1' }] }, 7, /routes\[0\].gw "fd00::1" must be an IPv4 address/],
    [{ ...base, routes: [{ dst: 'fd01::/48', gw: '10.0.0.1' }] }, 7, /routes\[0\].gw "10.0.0.1" must be an IPv6 address/],
    [{ ...base, routes: [{ dst: '10.0.0.0/8', gw: 7 }] }, 7, /routes\[0\].gw 7 must be an IPv4 address/],
    [{ ...base, routes: [{ dst: '10.0.0.0/8', priority: 5 }] }, 7, /routes\[0\] has "priority", which weft does not support/],
    [{ ...base, defaultRoute: 'yes' }, 7, /defaultRoute must be true .*, false .* or absent/],
  ])('%j → code %i', (raw, code, msg) => {
    const p = problem(raw);
    expect(p.code).toBe(code);
    expect(p.msg).toMatch(msg);
  });

  it('accepts what runtimes add, and true for the bridge-plugin keys weft always honours', () => {
    const c = parseNetConf({
      ...base,
      cniVersions: ['1.0.0'],
      capabilities: { portMappings: true },
      ipMasq: true,
      isGateway: true,
      isDefaultGateway: true,
      'cni.dev/whatever': 1,
    });
    expect(c.name).toBe('weft');
    expect(KNOWN_KEYS).toEqual(expect.arrayContaining(['cniVersion', 'cniVersions', 'name', 'type', 'args', 'runtimeConfig', 'capabilities', 'prevResult', 'dns', 'mtu', 'socket', 'journalDir', 'routes', 'defaultRoute']));
  });

  it('routes: canonical prefixes, gw kept when given; defaultRoute as given', () => {
    const c = parseNetConf({ ...base, routes: [{ dst: '192.168.0.0/16' }, { dst: 'FD01:0::/48', gw: 'FD00::0009' }, { dst: '0.0.0.0/0', gw: '10.0.0.1' }], defaultRoute: false });
    expect(c.routes).toEqual([{ dst: '192.168.0.0/16' }, { dst: 'fd01::/48', gw: 'fd00::9' }, { dst: '0.0.0.0/0', gw: '10.0.0.1' }]);
    expect(c.defaultRoute).toBe(false);
    expect(parseNetConf({ ...base, routes: [] }).routes).toBeUndefined();
    expect(parseNetConf(base).defaultRoute).toBeUndefined();
  });

  it.each([
    ['missing', {}, []],
    ['null', { 'cni.dev/valid-attachments': null }, []],
    ['older key null', { 'cni.dev/attachments': null }, []],
    ['empty', { 'cni.dev/valid-attachments': [] }, []],
    ['older key', { 'cni.dev/attachments': [{ containerID: 'a', ifname: 'eth0' }] }, [{ containerID: 'a', ifname: 'eth0' }]],
    ['null beside the older key', { 'cni.dev/valid-attachments': null, 'cni.dev/attachments': [{ containerID: 'a', ifname: 'eth0' }] }, [{ containerID: 'a', ifname: 'eth0' }]],
  ])('GC attachments %s → %j', (_what, extra, list) => {
    expect(parseNetConf({ ...base, cniVersion: '1.1.0', ...extra }).validAttachments).toEqual(list);
  });

  it.each([
    ['10.0.0.0/8', { dst: '10.0.0.0/8', family: 4 }],
    ['0.0.0.0/0', { dst: '0.0.0.0/0', family: 4 }],
    ['10.1.2.3/32', { dst: '10.1.2.3/32', family: 4 }],
    ['::/0', { dst: '::/0', family: 6 }],
    ['FD00:0046:0000::/64', { dst: 'fd00:46::/64', family: 6 }],
    ['fd00:46::1/128', { dst: 'fd00:46::1/128', family: 6 }],
    ['fd00:46::1/64', /host bits set/],
    ['10.0.0.1/24', /host bits set/],
    ['10.0.0.0', /not a CIDR prefix/],
    ['x/8', /not a CIDR prefix/],
    ['10.0.0.0/-1', /not a CIDR prefix/],
    ['fd00::/129', /above 128/],
  ])('parseRouteDst(%s)', (text, want) => {
    const got = parseRouteDst(text);
    if (want instanceof RegExp) expect(got).toMatch(want);
    else expect(got).toEqual(want);
  });

  it.each([
    ['args.cni.ips', { args: { cni: { ips: ['10.0.0.5/24'] } } }, /args\.cni\.ips cannot be honoured: weft assigns pod addresses/],
    ['args.cni.mac', { args: { cni: { mac: '02:00:00:00:00:01' } } }, /args\.cni\.mac cannot be honoured/],
    ['runtimeConfig.ips', { runtimeConfig: { ips: ['10.0.0.5/24'] } }, /runtimeConfig\.ips cannot be honoured/],
    ['runtimeConfig.mac', { runtimeConfig: { mac: '02:00:00:00:00:01' } }, /runtimeConfig\.mac cannot be honoured/],
  ])('a requested identity (%s) is refused with code 7', (_what, extra, msg) => {
    const p = problem({ ...base, ...extra });
    expect(p.code).toBe(7);
    expect(p.msg).toMatch(msg);
  });

  it('other args and runtimeConfig are accepted', () => {
    expect(parseNetConf({ ...base, args: { cni: { labels: [] } }, runtimeConfig: { portMappings: [] } }).name).toBe('weft');
  });

  it('gathers every problem into one error', () => {
    const p = problem({ cniVersion: '1.1.0', socket: 'x', mtu: 1, dns: { nameservers: ['y'] } });
    expect(p.code).toBe(7);
    for (const f of ['name', 'type', 'socket', 'mtu', 'dns.nameservers[0]']) expect(p.msg).toContain(f);
  });
});
