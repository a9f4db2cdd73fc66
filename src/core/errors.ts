/**
 * Base of every weft error: a stable `code` for programs, a message for people that names what
 * failed and on what, and the underlying `cause` when there is one.
 */
export class WeftError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WeftError';
    this.code = code;
  }
}

/** Bad settings: `problems` lists every one found, each naming the field it concerns. */
export class ConfigError extends WeftError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], where = 'configuration') {
    super('ERR_CONFIG_INVALID', `invalid ${where}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A system call failed; `syscall`, `errno` and `target` (device, address, file) say where. */
export class SystemError extends WeftError {
  readonly syscall: string;
  readonly errno: number;
  readonly errnoName: string;
  readonly target: string;

  constructor(
    code: string,
    init: { syscall: string; errno: number; errnoName: string; target: string; detail: string },
    options?: { cause?: unknown },
  ) {
    super(code, `${init.syscall} on ${init.target} failed: ${init.detail} (${init.errnoName})`, options);
    this.name = 'SystemError';
    this.syscall = init.syscall;
    this.errno = init.errno;
    this.errnoName = init.errnoName;
    this.target = init.target;
  }
}

/** Turns anything thrown into a one-line description for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${err.message} [${code}]` : err.message;
  }
  return String(err);
}

/**
 * Writing a file failed (ENOSPC, EDQUOT, EIO, EACCES, ...). `target` is the file meant to be
 * written (not a temp file beside it), `syscall` the call that failed, `errnoName` e.g. 'ENOSPC'.
 */
export class FileWriteError extends SystemError {
  constructor(path: string, syscall: string, err: unknown) {
    const e = err as Partial<NodeJS.ErrnoException> | null;
    const errnoName = typeof e?.code === 'string' ? e.code : 'EIO';
    // Node's text is "ENOSPC: no space left on device, write"; keep the middle part.
    const text = err instanceof Error ? err.message : String(err);
    const detail = /^[A-Z0-9]+: (.*?), [a-z]\w*(?: |$)/.exec(text)?.[1] ?? text;
    super('ERR_FILE_WRITE', { syscall, errno: Math.abs(typeof e?.errno === 'number' ? e.errno : 0), errnoName, target: path, detail }, { cause: err });
    this.name = 'FileWriteError';
  }
}
