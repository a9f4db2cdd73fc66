import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcSysctl } from '../../src/platform/linux/proc-sysctl.js';

describe('ProcSysctl: kernel parameters as files under a /proc/sys root', () => {
  const root = mkdtempSync(join(tmpdir(), 'weft-sysctl-'));
  mkdirSync(join(root, 'net', 'ipv4'), { recursive: true });
  writeFileSync(join(root, 'net', 'ipv4', 'ip_forward'), '0\n');
  const sysctl = new ProcSysctl({ root });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reads a parameter (trimmed) and writes it', async () => {
    expect(await sysctl.read('net.ipv4.ip_forward')).toBe('0');
    await sysctl.write('net.ipv4.ip_forward', '1');
    expect(readFileSync(join(root, 'net', 'ipv4', 'ip_forward'), 'utf8')).toBe('1');
    expect(await sysctl.read('net.ipv4.ip_forward')).toBe('1');
  });

  it('a parameter this kernel lacks reads undefined, and writing it is an error naming it', async () => {
    expect(await sysctl.read('net.bridge.bridge-nf-call-iptables')).toBeUndefined();
    await expect(sysctl.write('net.bridge.bridge-nf-call-iptables', '1')).rejects.toThrow('cannot set net.bridge.bridge-nf-call-iptables to 1: no such parameter in this kernel');
  });

  it.each(['net..ipv4', '../etc/passwd', 'net/ipv4/ip_forward', 'ip_forward'])('refuses %s as a name', async (name) => {
    await expect(sysctl.read(name)).rejects.toThrow('is not a sysctl name');
  });
});
