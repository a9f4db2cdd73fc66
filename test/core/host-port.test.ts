import { describe, expect, it } from 'vitest';
import { isHostName } from '../../src/core/dns-names.js';
import { formatHostPort, parseHostPort } from '../../src/core/host-port.js';

describe('host names (RFC 1123)', () => {
  it.each([
    ['node-1', true],
    ['Node-1.Example.NET', true],
    ['node-1.example.net.', true],
    ['1node.example', true],
    ['a'.repeat(63), true],
    ['a'.repeat(64), false],
    [`${'a.'.repeat(126)}a`, true], // 253 characters
    [`${'a.'.repeat(126)}ab`, false], // 254
    ['', false],
    ['.', false],
    ['-node', false],
    ['node-', false],
    ['no_de', false],
    ['node..example', false],
    ['10.0.0', false],
    ['host.123', false],
    ['ex ample', false],
  ])('%s: %s', (name, ok) => {
    expect(isHostName(name)).toBe(ok);
  });
});

describe('parseHostPort', () => {
  it.each([
    ['198.18.0.1:6784', undefined, { host: '198.18.0.1', port: 6784, family: 4 }],
    ['[2001:2::1]:6784', undefined, { host: '2001:2::1', port: 6784, family: 6 }],
    ['Node-1.Example:7000', undefined, { host: 'node-1.example', port: 7000, family: 0 }],
    ['node-1.example.', 6784, { host: 'node-1.example', port: 6784, family: 0 }],
    ['node-1.example', undefined, '"node-1.example" has no port'],
    ['node-1.example:65536', undefined, '"node-1.example:65536" has port 65536 outside 1-65535'],
    ['node_1:6784', undefined, '"node_1:6784" is neither an IP address nor a host name with an optional port (use ADDR:PORT, [V6ADDR]:PORT or HOST:PORT)'],
    ['300.1.1.1:6784', undefined, '"300.1.1.1:6784" is neither an IP address nor a host name with an optional port (use ADDR:PORT, [V6ADDR]:PORT or HOST:PORT)'],
    ['[node-1]:6784', undefined, '"[node-1]:6784" is neither an IP address nor a host name with an optional port (use ADDR:PORT, [V6ADDR]:PORT or HOST:PORT)'],
  ])('%s', (text, port, want) => {
    expect(parseHostPort(text, port)).toEqual(want);
  });

  it('formats names and addresses back', () => {
    expect(formatHostPort({ host: 'node-1.example', port: 1 })).toBe('node-1.example:1');
    expect(formatHostPort({ host: '2001:2::1', port: 1 })).toBe('[2001:2::1]:1');
  });
});
