import { createLogger, type LogLevel, type Logger } from '../../src/core/logger.js';

/** A logger that keeps every line it writes, parsed (for tests that count or read log lines). */
export function recordingLogger(level: LogLevel = 'debug'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level, sink: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) } });
  return { logger, lines };
}
