/**
 * Where the mesh's inbound connections come from: a TCP listener on the listen address (the
 * default), or anything else that hands over connected sockets with the remote address they came
 * from (the mesh's unit tests hand over Unix socket pairs with a chosen address).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { WeftError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/** The remote end of an accepted connection. */
export interface RemoteAddress {
  address: string;
  port: number;
}

export interface MeshListener {
  /** Starts accepting; `accept` gets every new connection. Rejects when it cannot listen. */
  listen(accept: (socket: Socket, remote: RemoteAddress) => void): Promise<void>;
  /** Stops accepting; connections already handed over are not touched. */
  close(): Promise<void>;
}

/**
 * TCP on `address:port`. No connection limit of its own: the mesh limits connections that have not
 * finished their handshake, and only members (holding the secret) get further.
 */
export class TcpMeshListener implements MeshListener {
  private readonly address: string;
  private readonly port: number;
  private readonly log: Logger;
  private server: Server | undefined;

  constructor(components: { logger: Logger }, init: { address: string; port: number }) {
    this.log = components.logger;
    this.address = init.address;
    this.port = init.port;
  }

  async listen(accept: (socket: Socket, remote: RemoteAddress) => void): Promise<void> {
    const server = createServer((socket) => accept(socket, { address: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 }));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(new WeftError('ERR_MESH_LISTEN', `cannot listen for mesh connections on TCP ${this.address}:${this.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`, { cause: err }));
      server.once('error', onError);
      server.listen({ host: this.address, port: this.port }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.log.warn('mesh listener error', { err: describeError(err) }));
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    return new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  }
}
