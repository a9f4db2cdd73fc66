/**
 * Running programs inside a named network namespace through `ip netns exec` (which execs the
 * program in place, so the PID we hold is the program's own): one-shot commands with captured
 * output, and tracked long-running processes that are stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { CommandError } from '../src/platform/errors.js';

export interface ExecOptions {
  /** Killed with SIGKILL after this long (default 60 s); the call then rejects whatever `check` says. */
  timeoutMs?: number;
  input?: string | Buffer;
  /** Default true: reject with a CommandError on a non-zero exit. */
  check?: boolean;
  /** Replaces the environment, as in child_process (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface SpawnOptions {
  /** Replaces the environment, as in child_process (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where stdout and stderr go; 'pipe' (default) keeps their last MiB for stdoutText/stderrText. */
  stdio?: 'pipe' | 'inherit' | 'ignore';
  /** Appends stdout and stderr to this file as well (needs stdio 'pipe'). */
  logFile?: string;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LabProcess {
  readonly pid: number;
  readonly ns: string;
  readonly argv: string[];
  /** Settles when the process has exited and its output has been read; never rejects. */
  readonly exited: Promise<ProcessExit>;
  stdoutText(): string;
  stderrText(): string;
  /** Sends a signal (default SIGTERM) to this process by PID, if it still runs. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `timeoutMs` (default 3000); resolves once it has exited. */
  stop(timeoutMs?: number): Promise<void>;
}

const MAX_EXEC_OUTPUT = 64 << 20;
const MAX_KEPT_OUTPUT = 1 << 20;

export function commandLine(ns: string, argv: readonly string[]): string {
  return ['ip', 'netns', 'exec', ns, ...argv].join(' ');
}

/** Runs `argv` in `ns` and collects its output. */
export function execIn(ns: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const check = opts.check ?? true;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const cmd = commandLine(ns, argv);
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out = new Collector(MAX_EXEC_OUTPUT);
    const err = new Collector(MAX_EXEC_OUTPUT);
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => out.add(d));
    child.stderr.on('data', (d: Buffer) => err.add(d));
    child.stdin.on('error', () => undefined); // EPIPE when the program does not read its input
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killPid(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(cmd, e.message, null));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = out.text();
      const stderr = err.text();
      if (timedOut) reject(new CommandError(cmd, `timed out after ${timeoutMs} ms and was killed; stderr: ${stderr.trim() || '(empty)'}`, code));
      else if (check && code !== 0) reject(new CommandError(cmd, stderr.trim() === '' ? stdout : stderr, code));
      else resolve({ stdout, stderr, code });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Starts `argv` in `ns`; `onExit` runs once it has exited. */
export function spawnIn(ns: string, argv: readonly string[], opts: SpawnOptions, onExit: (p: TrackedProcess) => void): TrackedProcess {
  const stdio = opts.stdio ?? 'pipe';
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', stdio, stdio], env: opts.env ?? process.env });
  const p = new TrackedProcess(child, ns, [...argv], opts.logFile);
  void p.exited.then(() => onExit(p));
  return p;
}

function killPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // already gone
  }
}

class Collector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  add(d: Buffer): void {
    this.chunks.push(d);
    this.size += d.length;
    while (this.size > this.limit && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export class TrackedProcess implements LabProcess {
  readonly pid: number;
  readonly ns: string;
  readonly argv: string[];
  readonly exited: Promise<ProcessExit>;
  private readonly out = new Collector(MAX_KEPT_OUTPUT);
  private readonly err = new Collector(MAX_KEPT_OUTPUT);
  private done = false;
  /** Set as soon as the process is reaped: its PID may be reused from then on, so never signal it. */
  private gone = false;
  private readonly file: WriteStream | undefined;

  constructor(child: ChildProcess, ns: string, argv: string[], logFile: string | undefined) {
    this.pid = child.pid ?? -1;
    this.ns = ns;
    this.argv = argv;
    this.file = logFile === undefined ? undefined : createWriteStream(logFile, { flags: 'a' });
    this.file?.on('error', () => undefined);
    child.stdout?.on('data', (d: Buffer) => {
      this.out.add(d);
      this.file?.write(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.err.add(d);
      this.file?.write(d);
    });
    this.exited = new Promise((resolve) => {
      let exit: ProcessExit | undefined;
      const finish = (): void => {
        if (this.done) return;
        this.done = true;
        this.file?.end();
        resolve(exit ?? { code: null, signal: null });
      };
      // 'close' comes after the pipes are drained; a grandchild holding them must not hold us up.
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        this.gone = true;
        setTimeout(finish, 500).unref();
      });
      child.on('close', (code, signal) => {
        exit ??= { code, signal };
        this.gone = true;
        finish();
      });
      child.on('error', (e) => {
        this.err.add(Buffer.from(`spawn failed: ${e.message}\n`));
        this.gone = true;
        finish();
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  stdoutText(): string {
    return this.out.text();
  }

  stderrText(): string {
    return this.err.text();
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.gone && this.pid > 0) killPid(this.pid, signal);
  }

  async stop(timeoutMs = 3000): Promise<void> {
    if (this.done) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
