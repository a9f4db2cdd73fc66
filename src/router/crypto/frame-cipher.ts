/**
 * FrameCipher: what the sleeve seals messages with. `key(material)` makes a key object for one
 * session and direction (see AeadKey in src/platform/aead.ts for the seal/open contract).
 * AeadCipher wraps an AEAD engine; PlainCipher neither encrypts nor authenticates.
 */
import { AEAD_TAG_LEN, type AeadEngine, type AeadKey } from '../../platform/aead.js';

export interface FrameCipher {
  readonly name: string;
  readonly sealed: boolean;
  readonly overhead: number;
  key(material: Buffer): AeadKey;
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

  key(material: Buffer): AeadKey {
    return this.engine.createKey(material);
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

  key(): AeadKey {
    return PLAIN_KEY;
  }
}
