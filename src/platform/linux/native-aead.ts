import { AEAD_KEY_LEN, type AeadEngine, type AeadKey } from '../aead.js';
import { WeftError } from '../../core/errors.js';
import { loadNative, type NativeAead } from './native.js';

class NativeKey implements AeadKey {
  private inner: NativeAead;
  private readonly ctor: new (key: Buffer) => NativeAead;

  constructor(ctor: new (key: Buffer) => NativeAead, material: Buffer) {
    this.ctor = ctor;
    this.inner = new ctor(material);
  }

  seal(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    return this.inner.seal(buf, off, len, ad, adOff, ctr, ctrOff);
  }

  open(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    return this.inner.open(buf, off, len, ad, adOff, ctr, ctrOff);
  }

  rekey(material: Buffer): void {
    this.inner.destroy();
    this.inner = new this.ctor(material);
  }

  destroy(): void {
    this.inner.destroy();
  }
}

/** ChaCha20-Poly1305 from the OpenSSL build that Node links and exports (through the addon). */
export class OpenSslChaCha implements AeadEngine {
  readonly name: string;
  private readonly ctor: new (key: Buffer) => NativeAead;

  constructor() {
    const n = loadNative();
    this.ctor = n.Aead;
    this.name = `chacha20-poly1305 (${n.opensslVersion})`;
  }

  createKey(material: Buffer): AeadKey {
    if (material.length !== AEAD_KEY_LEN) throw new WeftError('ERR_AEAD_KEY', `an AEAD key is ${AEAD_KEY_LEN} bytes, not ${material.length}`);
    return new NativeKey(this.ctor, material);
  }
}
