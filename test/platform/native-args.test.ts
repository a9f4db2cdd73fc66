import { describe, expect, it } from 'vitest';
import { loadNative } from '../../src/platform/linux/native.js';

// Option checks run before any system call, so these need no privileges.
describe('native addon: option checks', () => {
  const a = loadNative();
  const base = () => ({ arena: Buffer.alloc(4096), meta: new Int32Array(64), stats: new Float64Array(a.STATS_SIZE), stride: 1024, maxBatch: 4 });

  it.each([
    [{ arena: undefined }, /option arena is required/],
    [{ arena: 'x' }, /option arena must be a Buffer or typed array/],
    [{ maxBatch: 0 }, /maxBatch must be 1\.\.1024/],
    [{ maxBatch: -1 }, /maxBatch must be 1\.\.1024/],
    [{ maxBatch: 'many' }, /maxBatch must be a non-negative integer/],
    [{ stride: 8192 }, /cannot hold 4 slots of stride 8192/],
    [{ stats: new Float64Array(2) }, /stats must be a Float64Array of at least 15 entries \(STATS_SIZE\)/],
    [{ meta: new Int32Array(1) }, /meta needs 4 int32 entries/],
    [{ name: 'a-name-longer-than-15' }, /at most 15 bytes/],
    [{ netns: 42 }, /option netns must be a string/],
  ])('Tap rejects %o', (patch, message) => {
    expect(() => new a.Tap({ ...base(), name: 'wt-x', ...patch })).toThrow(message);
  });

  it('Udp needs an address and valid send tables', () => {
    const opts = { ...base(), meta: new Int32Array(40), txDesc: new Int32Array(4), txIov: new Int32Array(3), txMax: 1, txIovMax: 1 };
    expect(() => new a.Udp({ ...opts })).toThrow(/option address is required/);
    expect(() => new a.Udp({ ...opts, address: '198.18.0.1', txMax: 2 })).toThrow(/txDesc needs txMax\*4/);
    expect(() => new a.Udp({ ...opts, address: 'not-an-ip' })).toThrow(/"not-an-ip" is not an IP address/);
    expect(() => new a.Udp({ ...opts, address: `198.18.0.1${' '.repeat(100)}` })).toThrow(/option address is too long to be an IP address/);
    expect(() => new a.Udp({ ...opts, address: '198.18.0.1', port: 70000 })).toThrow(/port must be 0\.\.65535/);
  });

  it('setSpin accepts 0..1000 microseconds', () => {
    expect(() => a.setSpin(5000)).toThrow(/setSpin/);
    a.setSpin(0);
  });

  // Only refusals and a failing exec: a successful one would replace the test's own process.
  it('execve refuses bad arguments before any system call, and a failed exec throws with its errno and path', () => {
    expect(() => a.execve('', ['x'], [])).toThrow(/path must be a non-empty string/);
    expect(() => a.execve('/bin/true', 'x' as unknown as string[], [])).toThrow(/argv must be an array of strings/);
    expect(() => a.execve('/bin/true', ['a\0b'], [])).toThrow(/argv must be an array of strings without NUL/);
    expect(() => a.execve('/bin/true', [], [])).toThrow(/argv needs at least the program name/);
    expect(() => a.execve('/bin/true', ['true'], [42 as unknown as string])).toThrow(/env must be an array of NAME=value strings/);
    expect(() => a.execve('/nonexistent/weft-test-binary', ['x'], [])).toThrow(expect.objectContaining({ code: 'ERR_EXEC', errnoName: 'ENOENT' }));
  });

  it('mallocTrim runs glibc malloc_trim and says whether it gave memory back', () => {
    const freed: Buffer[] = [];
    for (let i = 0; i < 64; i++) freed.push(Buffer.allocUnsafeSlow(4096).fill(i));
    freed.length = 0;
    expect(typeof a.mallocTrim()).toBe('boolean');
    expect(typeof a.mallocTrim()).toBe('boolean');
  });
});
