/**
 * A small CRI client (runtime.v1) over a container runtime's gRPC Unix socket, as kubelet speaks
 * it, with only the calls the lab needs. The wire definition is our own subset of the CRI API in
 * `cri/runtime-v1.proto`; gRPC and the proto loader are imported on first connect, so importing
 * the lab costs nothing for programs that never start a runtime.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as Grpc from '@grpc/grpc-js';
import { WeftError } from '../src/core/errors.js';

/** A CRI call failed; `grpcCode` is the gRPC status (4 = deadline exceeded, 14 = unavailable), `method` the RPC. */
export class CriError extends WeftError {
  readonly method: string;
  readonly grpcCode: number | undefined;

  constructor(method: string, socket: string, detail: string, grpcCode: number | undefined, options?: { cause?: unknown }) {
    super('ERR_LAB_CRI', `CRI ${method} on ${socket} failed: ${detail}`, options);
    this.name = 'CriError';
    this.method = method;
    this.grpcCode = grpcCode;
  }
}

export type CriProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface CriPortMapping {
  protocol?: CriProtocol;
  containerPort: number;
  hostPort: number;
  hostIp?: string;
}

/** The PodSandboxConfig fields this client sends (names as in the CRI, camelCase). */
export interface CriPodSandboxConfig {
  metadata: { name: string; namespace: string; uid: string; attempt?: number };
  hostname?: string;
  logDirectory?: string;
  portMappings?: CriPortMapping[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: { cgroupParent?: string; sysctls?: Record<string, string> };
}

export interface CriContainerConfig {
  metadata: { name: string; attempt?: number };
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  envs?: Record<string, string>;
  labels?: Record<string, string>;
  /** Relative to the sandbox's logDirectory; empty (default) discards the output. */
  logPath?: string;
}

export type CriSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface CriSandboxStatus {
  id: string;
  state: CriSandboxState;
  name: string;
  namespace: string;
  uid: string;
  /** '' when the sandbox has no network (yet) or it was torn down. */
  ip: string;
  additionalIps: string[];
  labels: Record<string, string>;
  /** With `verbose`: containerd's JSON document under the key "info" (runtime spec, netns path, CNI result). */
  info: Record<string, string>;
}

export interface CriSandbox {
  id: string;
  state: CriSandboxState;
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
}

export interface CriExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface CriCondition {
  /** 'RuntimeReady' or 'NetworkReady' (false until a CNI config is loaded). */
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface CriVersion {
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

interface WireMetadata {
  name: string;
  uid: string;
  namespace: string;
}

interface WireSandboxStatus {
  status: {
    id: string;
    state: CriSandboxState;
    metadata: WireMetadata | null;
    network: { ip: string; additionalIps: { ip: string }[] } | null;
    labels: Record<string, string>;
  } | null;
  info: Record<string, string>;
}

interface WireSandbox {
  id: string;
  state: CriSandboxState;
  metadata: WireMetadata | null;
  labels: Record<string, string>;
}

type Callback = (err: Grpc.ServiceError | null, res: unknown) => void;
type Stub = Grpc.Client & Record<string, (req: unknown, opts: Grpc.CallOptions, cb: Callback) => void>;

const PROTO_NAME = 'runtime-v1.proto';

/** The proto next to this file, or (when run from dist/) next to the source. */
function protoPath(): string {
  const candidates = [new URL(`./cri/${PROTO_NAME}`, import.meta.url), new URL(`../../lab/cri/${PROTO_NAME}`, import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  throw new WeftError('ERR_LAB_CRI', `cannot find ${PROTO_NAME}; looked at ${candidates.map((c) => fileURLToPath(c)).join(', ')}`);
}

export class CriClient {
  readonly socket: string;
  private readonly runtime: Stub;
  private readonly images: Stub;
  private readonly callTimeoutMs: number;

  private constructor(socket: string, runtime: Stub, images: Stub, callTimeoutMs: number) {
    this.socket = socket;
    this.runtime = runtime;
    this.images = images;
    this.callTimeoutMs = callTimeoutMs;
  }

  /** A client for the runtime listening on the Unix socket `socket`; no call is made yet. */
  static async connect(socket: string, opts: { callTimeoutMs?: number } = {}): Promise<CriClient> {
    const grpc = await import('@grpc/grpc-js');
    const loader = await import('@grpc/proto-loader');
    const def = loader.loadSync(protoPath(), { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: false });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, Grpc.ServiceClientConstructor> } };
    const target = `unix://${socket}`;
    const creds = grpc.credentials.createInsecure();
    const ctor = (name: string): Grpc.ServiceClientConstructor => {
      const c = pkg.runtime.v1[name];
      if (c === undefined) throw new WeftError('ERR_LAB_CRI', `service runtime.v1.${name} is missing from ${PROTO_NAME}`);
      return c;
    };
    const runtime = new (ctor('RuntimeService'))(target, creds) as Stub;
    const images = new (ctor('ImageService'))(target, creds, {}) as Stub;
    return new CriClient(socket, runtime, images, opts.callTimeoutMs ?? 120_000);
  }

  async version(timeoutMs?: number): Promise<CriVersion> {
    const r = await this.call<CriVersion>(this.runtime, 'version', { version: 'v1' }, timeoutMs);
    return { runtimeName: r.runtimeName, runtimeVersion: r.runtimeVersion, runtimeApiVersion: r.runtimeApiVersion };
  }

  /** The runtime's conditions, as kubelet polls them. */
  async status(timeoutMs?: number): Promise<CriCondition[]> {
    const r = await this.call<{ status: { conditions: CriCondition[] } | null }>(this.runtime, 'status', { verbose: false }, timeoutMs);
    return (r.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));
  }

  /** Creates and starts a sandbox (the runtime runs CNI ADD); returns its id. */
  async runPodSandbox(config: CriPodSandboxConfig, runtimeHandler = ''): Promise<string> {
    const r = await this.call<{ podSandboxId: string }>(this.runtime, 'runPodSandbox', { config: sandboxWire(config), runtimeHandler });
    return r.podSandboxId;
  }

  async podSandboxStatus(podSandboxId: string, verbose = false): Promise<CriSandboxStatus> {
    const r = await this.call<WireSandboxStatus>(this.runtime, 'podSandboxStatus', { podSandboxId, verbose });
    const s = r.status;
    if (s === null) throw new CriError('podSandboxStatus', this.socket, `no status for sandbox ${podSandboxId}`, undefined);
    return {
      id: s.id,
      state: s.state,
      name: s.metadata?.name ?? '',
      namespace: s.metadata?.namespace ?? '',
      uid: s.metadata?.uid ?? '',
      ip: s.network?.ip ?? '',
      additionalIps: (s.network?.additionalIps ?? []).map((p) => p.ip),
      labels: s.labels,
      info: r.info,
    };
  }

  /** Sandboxes known to the runtime, optionally only those carrying every label of `labels`. */
  async listPodSandbox(filter: { id?: string; labels?: Record<string, string> } = {}): Promise<CriSandbox[]> {
    const req = { filter: { id: filter.id ?? '', labelSelector: filter.labels ?? {} } };
    const r = await this.call<{ items: WireSandbox[] }>(this.runtime, 'listPodSandbox', req);
    return r.items.map((s) => ({
      id: s.id,
      state: s.state,
      name: s.metadata?.name ?? '',
      namespace: s.metadata?.namespace ?? '',
      uid: s.metadata?.uid ?? '',
      labels: s.labels,
    }));
  }

  /** Stops the sandbox's containers and tears its network down (CNI DEL with prevResult). */
  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.call(this.runtime, 'stopPodSandbox', { podSandboxId });
  }

  /** Removes a sandbox and its containers (containerd runs CNI DEL again, without prevResult). */
  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.call(this.runtime, 'removePodSandbox', { podSandboxId });
  }

  /** Creates a container in a sandbox; `sandboxConfig` is the config the sandbox was run with. */
  async createContainer(podSandboxId: string, config: CriContainerConfig, sandboxConfig: CriPodSandboxConfig): Promise<string> {
    const wire = {
      metadata: { name: config.metadata.name, attempt: config.metadata.attempt ?? 0 },
      image: { image: config.image },
      command: config.command ?? [],
      args: config.args ?? [],
      workingDir: config.workingDir ?? '',
      envs: Object.entries(config.envs ?? {}).map(([key, value]) => ({ key, value })),
      labels: config.labels ?? {},
      logPath: config.logPath ?? '',
    };
    const r = await this.call<{ containerId: string }>(this.runtime, 'createContainer', { podSandboxId, config: wire, sandboxConfig: sandboxWire(sandboxConfig) });
    return r.containerId;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.call(this.runtime, 'startContainer', { containerId });
  }

  /** Stops a container, killing it after `timeoutS` seconds (0: at once). */
  async stopContainer(containerId: string, timeoutS = 0): Promise<void> {
    await this.call(this.runtime, 'stopContainer', { containerId, timeout: timeoutS });
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.call(this.runtime, 'removeContainer', { containerId });
  }

  /** Runs `cmd` in a running container and waits for it (at most `timeoutS` seconds, 0: no limit). */
  async execSync(containerId: string, cmd: string[], timeoutS = 30): Promise<CriExecResult> {
    const deadline = timeoutS > 0 ? timeoutS * 1000 + 10_000 : undefined;
    const r = await this.call<{ stdout: Buffer; stderr: Buffer; exitCode: number }>(this.runtime, 'execSync', { containerId, cmd, timeout: timeoutS }, deadline);
    return { stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), exitCode: r.exitCode };
  }

  /** The image's id when the runtime's CRI image store knows `image`, else undefined. */
  async imageStatus(image: string): Promise<string | undefined> {
    const r = await this.call<{ image: { id: string } | null }>(this.images, 'imageStatus', { image: { image }, verbose: false });
    return r.image === null || r.image.id === '' ? undefined : r.image.id;
  }

  close(): void {
    this.runtime.close();
    this.images.close();
  }

  private call<T>(stub: Stub, method: string, req: unknown, timeoutMs?: number): Promise<T> {
    const fn = stub[method];
    if (fn === undefined) return Promise.reject(new CriError(method, this.socket, 'no such method in the proto', undefined));
    return new Promise((resolve, reject) => {
      fn.call(stub, req, { deadline: Date.now() + (timeoutMs ?? this.callTimeoutMs) }, (err, res) => {
        if (err !== null) reject(new CriError(method, this.socket, err.details || err.message, err.code, { cause: err }));
        else resolve(res as T);
      });
    });
  }
}

function sandboxWire(c: CriPodSandboxConfig): unknown {
  return {
    metadata: { name: c.metadata.name, namespace: c.metadata.namespace, uid: c.metadata.uid, attempt: c.metadata.attempt ?? 0 },
    hostname: c.hostname ?? '',
    logDirectory: c.logDirectory ?? '',
    portMappings: (c.portMappings ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', containerPort: p.containerPort, hostPort: p.hostPort, hostIp: p.hostIp ?? '' })),
    labels: c.labels ?? {},
    annotations: c.annotations ?? {},
    linux: { cgroupParent: c.linux?.cgroupParent ?? '', sysctls: c.linux?.sysctls ?? {} },
  };
}
