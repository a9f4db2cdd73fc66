/**
 * The mesh's `Overlay` contract on top of the sleeve: peer names become wire ids, endpoint text
 * becomes addresses, sleeve events become mesh callbacks. No packet passes through here.
 */
import { peerIdFromPeerName } from '../core/ids.js';
import { parseEndpoint } from '../core/net.js';
import type { Overlay, PeerKeys, PeerName } from '../mesh/contracts.js';
import type { Sleeve } from './sleeve/sleeve.js';

export class OverlaySwitch implements Overlay {
  private readonly sleeve: Sleeve;
  private readonly pathListeners: ((name: PeerName, up: boolean) => void)[] = [];
  private readonly rekeyListeners: ((name: PeerName) => void)[] = [];
  private readonly keyListeners: ((keys: PeerKeys, confirmTx: boolean) => void)[] = [];
  private readonly removeListeners: ((id: number) => void)[] = [];
  /** Endpoints and relays named before the peer's first keys; applied when they arrive. */
  private readonly early = new Map<PeerName, { direct?: string | undefined; via?: PeerName | undefined }>();

  constructor(sleeve: Sleeve) {
    this.sleeve = sleeve;
    sleeve.setEvents({
      pathChange: (peer, up) => {
        for (const l of this.pathListeners) l(peer.name, up);
      },
      rekeyWanted: (peer) => {
        for (const l of this.rekeyListeners) l(peer.name);
      },
    });
  }

  installKeys(keys: PeerKeys, confirm: boolean): void {
    const known = this.sleeve.peerById(keys.id) !== undefined;
    this.sleeve.installKeys(keys, confirm);
    // Only keys the sleeve took (it refuses a second peer with the same wire id). The key bytes
    // are wiped when this returns: listeners copy what they keep.
    if (this.sleeve.peerById(keys.id)?.name === keys.name) for (const l of this.keyListeners) l(keys, confirm);
    const e = this.early.get(keys.name);
    if (!known && e !== undefined) {
      this.early.delete(keys.name);
      if ('direct' in e) this.setDirect(keys.name, e.direct);
      if ('via' in e) this.setVia(keys.name, e.via);
    }
  }

  setDirect(name: PeerName, endpoint: string | undefined): void {
    const id = peerIdFromPeerName(name);
    if (this.sleeve.peerById(id) === undefined) {
      this.early.set(name, { ...this.early.get(name), direct: endpoint });
      return;
    }
    const ep = endpoint === undefined ? undefined : parseEndpoint(endpoint, 0);
    this.sleeve.setDirect(id, typeof ep === 'string' ? undefined : ep);
  }

  setVia(name: PeerName, via: PeerName | undefined): void {
    const id = peerIdFromPeerName(name);
    if (this.sleeve.peerById(id) === undefined) {
      this.early.set(name, { ...this.early.get(name), via });
      return;
    }
    this.sleeve.setVia(id, via === undefined ? undefined : peerIdFromPeerName(via));
  }

  removePeer(name: PeerName): void {
    this.early.delete(name);
    const id = peerIdFromPeerName(name);
    const known = this.sleeve.peerById(id)?.name === name;
    this.sleeve.removePeer(id);
    if (known) for (const l of this.removeListeners) l(id);
  }

  pathUp(name: PeerName): boolean {
    return this.sleeve.peerById(peerIdFromPeerName(name))?.pathUp ?? false;
  }

  onPathChange(listener: (name: PeerName, up: boolean) => void): void {
    this.pathListeners.push(listener);
  }

  onRekeyWanted(listener: (name: PeerName) => void): void {
    this.rekeyListeners.push(listener);
  }

  /** Keys the sleeve installed for a peer (the fast path takes the probe key from them). */
  onKeys(listener: (keys: PeerKeys, confirmTx: boolean) => void): void {
    this.keyListeners.push(listener);
  }

  /** A peer the sleeve knew was removed (its keys are wiped). */
  onRemoved(listener: (id: number) => void): void {
    this.removeListeners.push(listener);
  }
}
