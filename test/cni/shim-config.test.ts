/**
 * The native plugin (build/weft-cni) finds the router's socket by parsing the network config as
 * JSON: the top-level "socket" string only (not a key of a nested object, not the word as a
 * value), escapes decoded, the last of duplicate keys taken (as JSON.parse does), the default
 * when there is none. A config it cannot use goes to the Node plugin. The binary runs from a
 * temp directory with no weft-node beside it, so when it cannot reach a router its error names
 * the socket it tried (or what is wrong with the config); a fake router answers on one socket.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SHIM = join(process.cwd(), 'build', 'weft-cni');
const DEFAULT_SOCKET = '/run/weft/weft.sock';

let dir: string;
let bin: string;
let real: string;
let decoy: string;
let server: Server;

function run(config: string): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, [], { env: { CNI_COMMAND: 'VERSION' }, stdio: ['pipe', 'pipe', 'ignore'] });
    let stdout = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.on('error', reject);
    p.on('close', (status) => resolve({ status, stdout }));
    p.stdin.end(config);
  });
}

describe.skipIf(!existsSync(SHIM))('weft-cni: the router socket from the network config', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-shim-'));
    bin = join(dir, 'weft');
    copyFileSync(SHIM, bin);
    chmodSync(bin, 0o755);
    real = join(dir, 'router.sock');
    decoy = join(dir, 'decoy.sock'); // nobody listens there
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const body = '{"reached":"router"}';
        res.writeHead(200, { 'x-cni-exit': '0', 'content-type': 'text/plain', 'content-length': body.length });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(real, resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const q = (s: string) => JSON.stringify(s);
  type Want = 'router' | { tried: string } | { code: number; msg: RegExp };
  const cases: [string, () => string, () => Want][] = [
    ['the top-level "socket"', () => `{"cniVersion":"1.0.0","name":"weft","type":"weft","socket":${q(real)}}`, () => 'router'],
    ['"socket" of a nested object before it is not taken', () => `{"plugins":{"socket":${q(decoy)}},"socket":${q(real)}}`, () => 'router'],
    ['"socket" only in a nested object: the default', () => `{"cniVersion":"1.0.0","ipam":{"socket":${q(decoy)}}}`, () => ({ tried: DEFAULT_SOCKET })],
    ['"socket" in an object inside an array is not taken', () => `{"list":[1,{"socket":${q(decoy)}}],"socket":${q(real)}}`, () => 'router'],
    ['the word "socket" as a value is not a key', () => `{"note":"socket","socket":${q(real)}}`, () => 'router'],
    ['the word inside an escaped string is not a key', () => `{"note":"say \\"socket\\": \\"${decoy}\\"","socket":${q(real)}}`, () => 'router'],
    ['escapes in the value are decoded', () => `{"socket":${q(real).replaceAll('/', '\\/').replace('router', '\\u0072outer')}}`, () => 'router'],
    ['an escaped key is the same key', () => `{"s\\u006fcket":${q(real)}}`, () => 'router'],
    ['the last of duplicate keys counts', () => `{"socket":${q(decoy)},"socket":${q(real)}}`, () => 'router'],
    ['white space anywhere', () => `\n { "a" : [ true , false , null , -1.5e3 ] ,\r\n\t"socket"\t:\n ${q(real)} } \n`, () => 'router'],
    ['no "socket": the default', () => '{"cniVersion":"1.0.0","name":"weft","type":"weft"}', () => ({ tried: DEFAULT_SOCKET })],
    ['a socket nobody listens on is named', () => `{"socket":${q(decoy)}}`, () => ({ tried: decoy })],
    ['"socket" that is not a string', () => '{"socket":42}', () => ({ code: 7, msg: /"socket" in the network config is not a string/ })],
    ['"socket" too long for a Unix socket', () => `{"socket":${q(`/${'a'.repeat(200)}`)}}`, () => ({ code: 7, msg: /"socket" in the network config is too long for a Unix socket/ })],
    ['"socket" that is not absolute', () => '{"socket":"run/weft.sock"}', () => ({ code: 7, msg: /"socket" in the network config is not an absolute path/ })],
    ['"socket" holding a NUL', () => `{"socket":${q(real).replace('router', 'rou\\u0000ter')}}`, () => ({ code: 7, msg: /holds a NUL character/ })],
    ['a config cut short', () => `{"socket":${q(real)}`, () => ({ code: 7, msg: /the network config is not valid JSON/ })],
    ['trailing garbage', () => `{"socket":${q(real)}} x`, () => ({ code: 7, msg: /the network config is not valid JSON/ })],
    ['a bad escape', () => `{"a":"\\x","socket":${q(real)}}`, () => ({ code: 7, msg: /the network config is not valid JSON/ })],
    ['not an object', () => `[${q(real)}]`, () => ({ code: 7, msg: /the network config is not a JSON object/ })],
    ['nested too deep for the plugin binary', () => `{"a":${'['.repeat(300)}${']'.repeat(300)},"socket":${q(real)}}`, () => ({ code: 7, msg: /not valid JSON/ })],
  ];

  it.each(cases)('%s', async (_, config, want) => {
    const w = want();
    if (typeof w === 'object' && 'tried' in w && w.tried === DEFAULT_SOCKET && existsSync(DEFAULT_SOCKET)) return; // a router runs here
    const r = await run(config());
    if (w === 'router') {
      expect(r.stdout).toBe('{"reached":"router"}');
      expect(r.status).toBe(0);
      return;
    }
    expect(r.status).toBe(1);
    const out = JSON.parse(r.stdout) as { code: number; msg: string };
    if ('tried' in w) {
      expect(out.code).toBe(11);
      expect(out.msg).toBe(`the weft router is not reachable at ${w.tried} (No such file or directory), and the Node plugin weft-node beside weft could not be started`);
    } else {
      expect(out.code).toBe(w.code);
      expect(out.msg).toMatch(w.msg);
    }
  });
});
