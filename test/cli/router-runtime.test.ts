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

  it("leaves an operator's own V8 setting alone, on node's command line or in NODE_OPTIONS (either spelling), and still sets malloc's", () => {
    for (const view of [
      { ...base, execArgv: ['--max-semi-space-size=8'] },
      { ...base, env: { ...base.env, NODE_OPTIONS: '--inspect --max_semi_space_size=4' } },
    ]) {
      const r = routerReexec(view)!;
      expect(r.argv.filter((a) => a.replace(/_/g, '-').startsWith('--max-semi-space-size'))).toEqual(view.execArgv.filter((a) => a.startsWith('--max-semi')));
      for (const [k, v] of Object.entries(ROUTER_ENV)) expect(r.env).toContain(`${k}=${v}`);
    }
    expect(routerReexec({ ...base, env: { ...base.env, NODE_OPTIONS: '--max-old-space-size=64' } })!.argv).toContain('--max-semi-space-size=1');
  });

  it("leaves an operator's own malloc settings alone and adds the rest", () => {
    const r = routerReexec({ ...base, env: { ...base.env, MALLOC_ARENA_MAX: '4' } })!;
    expect(r.env).toContain('MALLOC_ARENA_MAX=4');
    expect(r.env).not.toContain('MALLOC_ARENA_MAX=2');
    expect(r.env).toContain('MALLOC_TRIM_THRESHOLD_=131072');
    expect(r.env).toContain('MALLOC_MMAP_THRESHOLD_=32768');
    expect(r.argv).toContain('--max-semi-space-size=1');
  });

  it('runs nothing again when the operator set every one of them', () => {
    const env = { ...base.env, MALLOC_ARENA_MAX: '8', MALLOC_TRIM_THRESHOLD_: '0', MALLOC_MMAP_THRESHOLD_: '65536' };
    expect(routerReexec({ ...base, execArgv: ['--max-semi-space-size=2'], env })).toBeUndefined();
    expect(routerReexec({ ...base, env })).toBeDefined();
  });
});
