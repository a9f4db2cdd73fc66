/**
 * One logger for the whole process: JSON lines on a writable stream, components
 * (`router:sleeve`), levels. Callers on hot paths check `enabled(level)` before building a message.
 */
import { isoTime } from './clock.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVELS: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, silent: 100 };

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(LEVELS, value);
}

export interface LogSink {
  write(line: string): unknown;
}

export interface Logger {
  readonly component: string;
  enabled(level: LogLevel): boolean;
  trace(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

interface Shared {
  level: number;
  sink: LogSink;
  now: () => number;
}

class JsonLogger implements Logger {
  readonly component: string;
  private readonly shared: Shared;

  constructor(shared: Shared, component: string) {
    this.shared = shared;
    this.component = component;
  }

  enabled(level: LogLevel): boolean {
    return LEVELS[level] >= this.shared.level;
  }

  trace(msg: string, fields?: Record<string, unknown>): void {
    this.log('trace', msg, fields);
  }
  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.log('error', msg, fields);
  }

  child(component: string): Logger {
    return new JsonLogger(this.shared, this.component === '' ? component : `${this.component}:${component}`);
  }

  private log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (LEVELS[level] < this.shared.level) return;
    const record: Record<string, unknown> = {
      time: isoTime(this.shared.now()),
      level,
      component: this.component,
      msg,
    };
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(fields)) record[k] = v instanceof Error ? v.message : v;
    }
    this.shared.sink.write(`${JSON.stringify(record, bigintSafe)}\n`);
  }
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

export function createLogger(init: { level?: LogLevel; sink?: LogSink; component?: string; now?: () => number } = {}): Logger {
  const shared: Shared = {
    level: LEVELS[init.level ?? 'info'],
    sink: init.sink ?? process.stderr,
    now: init.now ?? Date.now,
  };
  return new JsonLogger(shared, init.component ?? '');
}

/** A logger that drops everything (tests, library defaults). */
export const silentLogger: Logger = createLogger({ level: 'silent', sink: { write: () => true } });
