/** Network configuration validation: defaults, each problem named, all problems gathered. */
import { describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/errors.js';
import { DEFAULT_JOURNAL_DIR, DEFAULT_SOCKET, parseNetConf } from '../../src/cni/netconf.js';

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
    expect(parseNetConf(base)).toEqual({ ...base, socket: DEFAULT_SOCKET, journalDir: DEFAULT_JOURNAL_DIR });
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
  ])('%j → code %i', (raw, code, msg) => {
    const p = problem(raw);
    expect(p.code).toBe(code);
    expect(p.msg).toMatch(msg);
  });

  it('gathers every problem into one error', () => {
    const p = problem({ cniVersion: '1.1.0', socket: 'x', mtu: 1, dns: { nameservers: ['y'] } });
    expect(p.code).toBe(7);
    for (const f of ['name', 'type', 'socket', 'mtu', 'dns.nameservers[0]']) expect(p.msg).toContain(f);
  });
});
