import { describe, expect, it } from 'vitest';
import { IpamArgumentError, IpamRingWriteError } from '../../src/ipam/errors.js';
import { Ring } from '../../src/ipam/ring.js';
import { PackBuilder, withProofs } from '../../src/ipam/ring-codec.js';
import { space } from '../../src/ipam/space.js';
import { fastWriters, names } from './keys.js';

const P = [...names.slice(0, 4)].sort();
const W = P.map((n) => fastWriters.find((w) => w.name === n)!);
const SEEDS = P.slice(0, 2);
const ring = (): Ring => Ring.fromGenesis('c1', '10.0.0.0/24', SEEDS);

// What callers of the ring, its codec and the space helpers can get wrong: each throws an error
// with a stable code, still of the kind (RangeError, TypeError) it always was.
const CASES: { what: string; run: () => unknown; kind: typeof RangeError | typeof TypeError; cls: unknown; code: string; message: RegExp }[] = [
  { what: 'assign of space the writer does not own', run: () => ring().assign(200n, 210n, P[3]!, W[0]!), kind: RangeError, cls: IpamRingWriteError, code: 'ERR_IPAM_RING_WRITE', message: /does not own all of \[200, 210\) in 10\.0\.0\.0\/24/ },
  { what: 'assign of an empty range', run: () => ring().assign(10n, 10n, P[3]!, W[0]!), kind: RangeError, cls: IpamRingWriteError, code: 'ERR_IPAM_RING_WRITE', message: /bad range \[10, 10\)/ },
  { what: 'write past the version bound', run: () => ring().write(W[0]!, [{ token: 0n, owner: SEEDS[0]!, version: 2 ** 32, end: 128n }]), kind: RangeError, cls: IpamRingWriteError, code: 'ERR_IPAM_RING_WRITE', message: /version 4294967296 is outside/ },
  { what: 'a peer forgetting itself', run: () => ring().forget(P[1]!, W[1]!), kind: RangeError, cls: IpamRingWriteError, code: 'ERR_IPAM_RING_WRITE', message: /cannot forget itself/ },
  { what: 'a genesis without seeds', run: () => Ring.fromGenesis('c1', '10.0.0.0/24', []), kind: TypeError, cls: IpamArgumentError, code: 'ERR_IPAM_INVALID_ARGUMENT', message: /at least one seed/ },
  { what: 'more seeds than addresses', run: () => Ring.fromGenesis('c1', '10.0.0.0/30', names.slice(0, 5)), kind: TypeError, cls: IpamArgumentError, code: 'ERR_IPAM_INVALID_ARGUMENT', message: /5 seeds cannot share 10\.0\.0\.0\/30/ },
  { what: 'a range with host bits', run: () => space('10.0.0.1/24'), kind: TypeError, cls: IpamArgumentError, code: 'ERR_IPAM_INVALID_ARGUMENT', message: /host bits set/ },
  { what: 'proofs added to bytes that are not a ring', run: () => withProofs(Uint8Array.of(0x98), ring().entryList(), 4), kind: TypeError, cls: IpamArgumentError, code: 'ERR_IPAM_INVALID_ARGUMENT', message: /not a ring encoding/ },
  { what: 'sixteen items packed in one call', run: () => new PackBuilder().items(...Array<number>(16).fill(0)), kind: TypeError, cls: IpamArgumentError, code: 'ERR_IPAM_INVALID_ARGUMENT', message: /16 items in one call/ },
];

describe('errors of the ring, its codec and spaces', () => {
  it.each(CASES)('$what: $code', ({ run, kind, cls, code, message }) => {
    let thrown: unknown;
    try {
      run();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(cls);
    expect(thrown).toBeInstanceOf(kind);
    expect((thrown as { code?: unknown }).code).toBe(code);
    expect((thrown as Error).message).toMatch(message);
  });
});
