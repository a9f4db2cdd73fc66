/**
 * FrameCipher: what the sleeve seals messages with. `key(material)` makes a key object for one
 * session and direction (see AeadKey in src/platform/aead.ts for the seal/open contract);
 * `batch(capacity)` a batch of seals and opens for those keys (AeadBatch: run on `threads`
 * threads, or one by one as queued when `threads` is 0). AeadCipher wraps an AEAD engine;
 * PlainCipher neither encrypts nor authenticates.
 */
import { AEAD_TAG_LEN, InlineAeadBatch, type AeadBatch, type AeadEngine, type AeadKey } from '../../platform/aead.js';

export interface FrameCipher {
  readonly name: string;
  readonly sealed: boolean;
  readonly overhead: number;
  /** Threads a batch runs on (0: jobs run as they are queued). */
  readonly threads: number;
  key(material: Buffer): AeadKey;
  batch(capacity: number): AeadBatch;
  /** Stops the engine's threads; idempotent. */
  close(): void;
}

export class AeadCipher implements FrameCipher {
  readonly sealed = true;
  readonly overhead = AEAD_TAG_LEN;
  readonly name: string;
  private readonly engine: AeadEngine;

  constructor(engine: AeadEngine) {
    this.engine = engine;
    this.name = engine.name;
  }

  get threads(): number {
    return this.engine.threads;
  }

  key(material: Buffer): AeadKey {
    return this.engine.createKey(material);
  }

  batch(capacity: number): AeadBatch {
    return this.engine.createBatch(capacity);
  }

  close(): void {
    this.engine.close();
  }
}

const PLAIN_KEY: AeadKey = {
  seal: (_b, _o, len) => len,
  open: (_b, _o, len) => len,
  rekey: () => undefined,
  destroy: () => undefined,
};

/** No encryption and no authentication: only when the operator asks for plaintext. */
export class PlainCipher implements FrameCipher {
  readonly sealed = false;
  readonly overhead = 0;
  readonly name = 'none';
  readonly threads = 0;

  key(): AeadKey {
    return PLAIN_KEY;
  }

  batch(): AeadBatch {
    return new InlineAeadBatch();
  }

  close(): void {}
}
