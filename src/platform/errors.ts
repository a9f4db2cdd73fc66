import { SystemError, WeftError } from '../core/errors.js';

/** Converts an Error thrown by the native addon (code, syscall, errno, target) into a SystemError. */
export function fromNativeError(err: unknown, fallbackCode: string): Error {
  if (err instanceof Error) {
    const e = err as Error & { code?: string; syscall?: string; errno?: number; errnoName?: string; target?: string; detail?: string };
    if (typeof e.syscall === 'string' && typeof e.errno === 'number') {
      return new SystemError(
        e.code ?? fallbackCode,
        { syscall: e.syscall, errno: e.errno, errnoName: e.errnoName ?? 'EUNKNOWN', target: e.target ?? '?', detail: e.detail ?? e.message },
        { cause: err },
      );
    }
    return new WeftError(e.code ?? fallbackCode, e.message, { cause: err });
  }
  return new WeftError(fallbackCode, String(err));
}

/** A command (ip, nft, bridge) failed; the message carries the command line and its stderr. */
export class CommandError extends WeftError {
  readonly command: string;
  readonly stderr: string;
  readonly exitCode: number | null;

  constructor(command: string, stderr: string, exitCode: number | null) {
    super('ERR_COMMAND', `\`${command}\` failed (exit ${exitCode ?? 'signal'}): ${stderr.trim() || 'no output'}`);
    this.name = 'CommandError';
    this.command = command;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

/**
 * nftables refused a script run in-process (NftLib), or libnftables cannot be used
 * (ERR_NFT_UNAVAILABLE); `detail` is nft's own message, as the command would print it.
 */
export class NftError extends WeftError {
  readonly detail: string;

  constructor(code: 'ERR_NFT' | 'ERR_NFT_UNAVAILABLE', detail: string, what: string) {
    super(code, `${what}: ${detail.trim() || 'no message'}`);
    this.name = 'NftError';
    this.detail = detail;
  }
}
