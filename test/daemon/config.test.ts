import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { validateConfig } from '../../src/daemon/config.js';

const good = { name: 'node-1', listen: '198.18.0.1:6784', peers: ['198.18.0.2'], secretFile: '/etc/weft/secret' };

describe('validateConfig', () => {
  it('fills defaults', () => {
    const c = validateConfig(good);
    expect(c.listen).toEqual({ address: '198.18.0.1', port: 6784, family: 4 });
    expect(c.peers).toEqual([{ address: '198.18.0.2', port: 6784, family: 4 }]);
    expect(c.bridge).toBe('weft');
    expect(c.tap).toBe('weft-tap');
    expect(c.vnetHdr).toBe(true);
    expect(c.plaintext).toBe(false);
    expect(c.underlayMtu).toBeUndefined();
  });

  it('accepts IPv6 endpoints', () => {
    const c = validateConfig({ ...good, listen: '[::]:7000', peers: ['[fd00::2]:7000'] });
    expect(c.listen.family).toBe(6);
    expect(c.peers[0]).toEqual({ address: 'fd00::2', port: 7000, family: 6 });
  });

  it.each([
    [{ name: undefined }, '--name: required'],
    [{ name: '-bad' }, '--name: "-bad"'],
    [{ listen: 'nowhere:1' }, '--listen: "nowhere:1" is not an IP address'],
    [{ listen: '198.18.0.1:70000' }, 'outside 1-65535'],
    [{ peers: ['198.18.0.2', '300.1.1.1'] }, '--peer #2'],
    [{ secretFile: undefined }, '--secret-file: required'],
    [{ plaintext: true }, '--plaintext and --secret-file exclude each other'],
    [{ bridge: 'a-name-that-is-far-too-long' }, '--bridge'],
    [{ tap: 'weft' }, '--bridge and --tap must differ'],
    [{ underlayMtu: '900' }, '--underlay-mtu: "900" must be an integer from 1280'],
    [{ mtu: 'x' }, '--mtu: "x"'],
    [{ logLevel: 'loud' }, '--log-level: "loud"'],
    [{ apiSocket: 'relative.sock' }, '--api-socket'],
    [{ unknown: ['--frobnicate'] }, 'unknown option or argument "--frobnicate"'],
    [{ listen: '198.18.0.1:1', peers: ['[fd00::1]:1'] }, 'is IPv6 but --listen is IPv4'],
  ])('reports %o', (patch, message) => {
    expect(() => validateConfig({ ...good, ...patch })).toThrow(message);
  });

  it('lists every problem at once', () => {
    try {
      validateConfig({ name: '', listen: 'x', peers: ['y'], mtu: '1', unknown: ['z'] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.code).toBe('ERR_CONFIG_INVALID');
      expect(e.problems.length).toBe(6);
    }
  });
});
