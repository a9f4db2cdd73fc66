import { WeftError } from '../src/core/errors.js';

/** The lab was asked for something it cannot do (bad init, unknown node, namespace not its own). */
export class LabError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LAB', message, options);
    this.name = 'LabError';
  }
}

/** A traffic tool (ping, iperf3, tcpdump, a transfer script) printed something we cannot read. */
export class LabParseError extends WeftError {
  readonly tool: string;

  constructor(tool: string, problem: string, output: string) {
    const tail = output.length > 600 ? `...${output.slice(-600)}` : output;
    super('ERR_LAB_PARSE', `cannot parse ${tool} output: ${problem}; output was: ${tail.trim() || '(empty)'}`);
    this.name = 'LabParseError';
    this.tool = tool;
  }
}
