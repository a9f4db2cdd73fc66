import { describe, expect, it } from 'vitest';
import { ROUTER_ENV, ROUTER_NODE_FLAGS, routerReexec, type ProcessView } from '../../src/cli/router-runtime.js';

const base: ProcessView = {
  execPath: '/usr/bin/node',
  execArgv: ['--enable-source-maps'],
  argv: ['/usr/bin/node', '/opt/weft/dist/src/cli/main.js', 'launch', '--name', 'n1'],
  env: { PATH: '/usr/bin', HOME: '/root', EMPTY: undefined },
};

describe('routerReexec: the router runs again under its memory settings', () => {
  it('keeps node, its own flags, the script and every argument, adds the V8 flags and the malloc setting, marks the new image', () => {
    const r = routerReexec(base)!;
    expect(r.path).toBe('/usr/bin/node');
    expect(r.argv).toEqual(['/usr/bin/node', '--enable-source-maps', ...ROUTER_NODE_FLAGS, '/opt/weft/dist/src/cli/main.js', 'launch', '--name', 'n1']);
    expect(r.env).toContain('PATH=/usr/bin');
    expect(r.env).toContain('HOME=/root');
    for (const [k, v] of Object.entries(ROUTER_ENV)) expect(r.env).toContain(`${k}=${v}`);
    expect(r.env).toContain('WEFT_RUNTIME=set');
    expect(r.env.some((e) => e.startsWith('EMPTY'))).toBe(false);
  });

  it('never runs again from the image it made (no loop) nor when told not to', () => {
    expect(routerReexec({ ...base, env: { ...base.env, WEFT_RUNTIME: 'set' } })).toBeUndefined();
    expect(routerReexec({ ...base, env: { ...base.env, WEFT_RUNTIME: 'off' } })).toBeUndefined();
  });

  it("leaves an operator's own V8 setting alone, on node's command line or in NODE_OPTIONS (either spelling)", () => {
    expect(routerReexec({ ...base, execArgv: ['--max-semi-space-size=8'] })).toBeUndefined();
    expect(routerReexec({ ...base, env: { ...base.env, NODE_OPTIONS: '--inspect --max_semi_space_size=4' } })).toBeUndefined();
    expect(routerReexec({ ...base, env: { ...base.env, NODE_OPTIONS: '--max-old-space-size=64' } })).toBeDefined();
  });

  it("leaves an operator's own malloc setting alone", () => {
    expect(routerReexec({ ...base, env: { ...base.env, MALLOC_ARENA_MAX: '4' } })).toBeUndefined();
  });
});
