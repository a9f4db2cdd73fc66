// The subset of noise-handshake that weft calls (the package ships no type declarations).
declare module 'noise-handshake' {
  interface KeyPair {
    publicKey: Uint8Array;
    secretKey: Uint8Array;
  }
  class Noise {
    constructor(pattern: 'XXpsk0' | 'IK' | 'XX' | 'NNpsk0' | 'XK', initiator: boolean, staticKeypair?: KeyPair | null, opts?: { psk?: Uint8Array });
    readonly s: KeyPair;
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
    send(payload?: Uint8Array): Buffer;
    recv(buf: Uint8Array): Buffer;
    readonly complete: boolean;
    /** After completion: key to send with. */
    readonly tx: Buffer | null;
    /** After completion: key to receive with. */
    readonly rx: Buffer | null;
    readonly rs: Buffer | null;
    readonly hash: Buffer | null;
  }
  export default Noise;
}
