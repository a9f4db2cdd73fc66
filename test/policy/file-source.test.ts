/**
 * The policy file of standalone mode, with real temp files: load, reload on a change and on a
 * rename over it, a bad document skipped with the rest kept, an unparsable or vanished file
 * keeping the previous snapshot, a file missing at start, the size bound.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { FilePolicySource, parsePolicyFile } from '../../src/policy/file-source.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { until } from '../k8s/helpers.js';

const POLICY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: team-a}
spec:
  podSelector: {}
`;

const NAMESPACE = `
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
  labels: {team: a}
`;

const POD = `
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: team-a, labels: {app: web}}
spec:
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status:
  podIPs: [{ip: 10.9.0.3}]
`;

const docs = (...d: string[]): string => d.join('\n---\n');

/** Writes `text` beside the file and renames it over (a reader never sees it half written). */
function replace(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

let dir: string;
let file: string;
let source: FilePolicySource | undefined;
let changes: number;

function makeSource(path = file, maxBytes?: number): FilePolicySource {
  const s = new FilePolicySource({ clock: systemClock, logger: recordingLogger().logger }, { path, pollMs: 50, settleMs: 5, ...(maxBytes === undefined ? {} : { maxBytes }) });
  changes = 0;
  s.onChange(() => changes++);
  source = s;
  return s;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-policy-file-'));
  file = join(dir, 'policies.yaml');
});

afterEach(async () => {
  await source?.stop();
  source = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('parsePolicyFile', () => {
  it('reads policies, namespaces and pods from several documents', () => {
    const { snapshot, problems } = parsePolicyFile(docs(POLICY, NAMESPACE, POD), 'f.yaml');
    expect(problems).toEqual([]);
    expect(snapshot.policies.map((p) => `${p.namespace}/${p.name}`)).toEqual(['team-a/deny-all']);
    expect(snapshot.namespaces).toEqual([{ name: 'team-a', labels: { team: 'a', 'kubernetes.io/metadata.name': 'team-a' } }]);
    expect(snapshot.pods).toEqual([{ namespace: 'team-a', name: 'web', labels: { app: 'web' }, ips: ['10.9.0.3'], namedPorts: [{ name: 'http', protocol: 'TCP', port: 8080 }], node: undefined, hostNetwork: false }]);
  });

  it('reads the items of a kind: List; empty documents are nothing', () => {
    const list = `apiVersion: v1\nkind: List\nitems:\n- ${JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'b' } })}\n- ${JSON.stringify({ kind: 'NetworkPolicy', metadata: { name: 'x', namespace: 'b' }, spec: {} })}\n`;
    const { snapshot, problems } = parsePolicyFile(docs('', list, '# only a comment'), 'f.yaml');
    expect(problems).toEqual([]);
    expect(snapshot.policies.map((p) => p.name)).toEqual(['x']);
    expect(snapshot.namespaces.map((n) => n.name)).toEqual(['b']);
  });

  it('a namespace named by a policy or a pod but not described exists with its name label', () => {
    const { snapshot } = parsePolicyFile(docs(POLICY, POD.replace('team-a', 'team-b')), 'f.yaml');
    expect(snapshot.namespaces).toEqual([
      { name: 'team-a', labels: { 'kubernetes.io/metadata.name': 'team-a' } },
      { name: 'team-b', labels: { 'kubernetes.io/metadata.name': 'team-b' } },
    ]);
  });

  it.each<[string, string, { where: string; problem: string }]>([
    ['a bad policy', docs(NAMESPACE, POLICY.replace('podSelector: {}', 'podSelector: {}\n  ingress: [{ports: [{port: 0}]}]')), { where: 'f.yaml document 2 (NetworkPolicy team-a/deny-all)', problem: 'spec.ingress[0].ports[0].port: 0 is not a port (1-65535)' }],
    ['an unknown kind', docs(NAMESPACE, 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}'), { where: 'f.yaml document 2', problem: 'kind: "Deployment", not NetworkPolicy, Namespace, Pod or List (skipped)' }],
    ['no kind', docs(NAMESPACE, 'metadata: {name: d}'), { where: 'f.yaml document 2', problem: 'kind: missing, not NetworkPolicy, Namespace, Pod or List (skipped)' }],
    ['a scalar document', docs(NAMESPACE, 'hello'), { where: 'f.yaml document 2', problem: 'kind: missing, not NetworkPolicy, Namespace, Pod or List (skipped)' }],
    ['a wrong apiVersion', docs(NAMESPACE, POLICY.replace('networking.k8s.io/v1', 'extensions/v1beta1')), { where: 'f.yaml document 2 (NetworkPolicy)', problem: 'apiVersion: "extensions/v1beta1" is not networking.k8s.io/v1' }],
    ['a List item', docs(NAMESPACE, 'kind: List\nitems:\n- {kind: Pod, metadata: {name: Bad}}'), { where: 'f.yaml document 2 item 1 (Pod default/Bad)', problem: 'metadata.name: "Bad" is not a DNS subdomain (lowercase letters, digits, \'-\' and \'.\', alphanumeric at both ends)' }],
    ['a List without items', docs(NAMESPACE, 'kind: List\nitems: 3'), { where: 'f.yaml document 2 (List)', problem: 'items: must be a list' }],
    ['YAML aliases', docs(NAMESPACE, 'kind: NetworkPolicy\nmetadata: {name: a}\nspec:\n  ingress: [&r {}, *r]'), { where: 'f.yaml document 2', problem: 'uses YAML aliases (*name), which the policy file does not accept (skipped)' }],
    ['twice the same policy', docs(NAMESPACE, POLICY, POLICY), { where: 'f.yaml document 3', problem: 'NetworkPolicy team-a/deny-all is also in f.yaml document 2: this later one is used' }],
  ])('%s is a problem naming the document; the other documents are used', (_name, text, want) => {
    const { snapshot, problems } = parsePolicyFile(text, 'f.yaml');
    expect(problems).toEqual([want]);
    expect(snapshot.namespaces.find((n) => n.name === 'team-a')?.labels['team']).toBe('a');
  });

  it('unparsable YAML throws (the caller keeps what it had)', () => {
    expect(() => parsePolicyFile('kind: [unclosed', 'f.yaml')).toThrow(/f\.yaml/);
  });
});

describe('FilePolicySource', () => {
  it('loads the file at start', async () => {
    writeFileSync(file, docs(POLICY, NAMESPACE));
    const s = makeSource();
    await s.start();
    expect(s.snapshot()?.policies.map((p) => p.name)).toEqual(['deny-all']);
    expect(s.describe()).toEqual({ kind: 'file', where: file, synced: true, problems: [], error: undefined });
    expect(changes).toBe(1);
  });

  it('reloads when the file is written, and when another file is renamed over it', async () => {
    writeFileSync(file, POLICY);
    const s = makeSource();
    await s.start();
    // Written in place: a read may see it half written, so only the end is certain.
    writeFileSync(file, docs(POLICY, POLICY.replace('deny-all', 'second')));
    await until(() => s.snapshot()?.policies.length === 2);
    const before = changes;
    const tmp = join(dir, 'new.yaml');
    writeFileSync(tmp, POLICY.replace('deny-all', 'third'));
    renameSync(tmp, file);
    await until(() => s.snapshot()?.policies[0]?.name === 'third');
    expect(s.snapshot()?.policies.map((p) => p.name)).toEqual(['third']);
    expect(changes).toBe(before + 1);
  });

  it('a bad document is skipped and listed, the rest used', async () => {
    writeFileSync(file, docs(POLICY, 'kind: NetworkPolicy\nmetadata: {name: bad, namespace: x}\nspec: {policyTypes: [Sideways]}'));
    const s = makeSource();
    await s.start();
    expect(s.snapshot()?.policies.map((p) => p.name)).toEqual(['deny-all']);
    expect(s.describe().problems).toEqual([{ where: `${file} document 2 (NetworkPolicy x/bad)`, problem: 'spec.policyTypes[0]: "Sideways" is not Ingress or Egress' }]);
    expect(s.describe().error).toBeUndefined();
  });

  it('an unparsable file keeps the previous snapshot and says why; a good one clears the error', async () => {
    writeFileSync(file, POLICY);
    const s = makeSource();
    await s.start();
    const before = s.snapshot();
    writeFileSync(file, 'kind: [unclosed');
    await until(() => s.describe().error !== undefined);
    expect(s.describe().error).toMatch(new RegExp(`^the policy file ${file} is not valid YAML`));
    expect(s.snapshot()).toBe(before);
    writeFileSync(file, POLICY.replace('deny-all', 'again'));
    await until(() => s.snapshot()?.policies[0]?.name === 'again');
    expect(s.describe().error).toBeUndefined();
  });

  it('a file removed keeps the previous snapshot, and is read again when it is back', async () => {
    writeFileSync(file, POLICY);
    const s = makeSource();
    await s.start();
    rmSync(file);
    await until(() => s.describe().error !== undefined);
    expect(s.describe().error).toBe(`the policy file ${file} does not exist`);
    expect(s.snapshot()?.policies.map((p) => p.name)).toEqual(['deny-all']);
    writeFileSync(file, POLICY);
    await until(() => s.describe().error === undefined);
    expect(s.snapshot()?.policies.map((p) => p.name)).toEqual(['deny-all']);
  });

  it('a file missing at start: an error and no snapshot, until it is created', async () => {
    const s = makeSource();
    await s.start();
    expect(s.snapshot()).toBeUndefined();
    expect(s.describe()).toMatchObject({ synced: false, error: `the policy file ${file} does not exist` });
    writeFileSync(file, POLICY);
    await until(() => s.snapshot() !== undefined);
    expect(s.describe().synced).toBe(true);
  });

  it('a file over the size bound is refused', async () => {
    writeFileSync(file, `${POLICY}\n#${'x'.repeat(200)}\n`);
    const s = makeSource(file, 100);
    await s.start();
    expect(s.snapshot()).toBeUndefined();
    expect(s.describe().error).toMatch(/bytes, more than the 100 allowed$/);
  });

  it('a directory is not a policy file', async () => {
    const s = makeSource(dir);
    await s.start();
    expect(s.describe().error).toBe(`cannot read the policy file ${dir}: it is not a regular file`);
  });

  it('the same text written again is not a change', async () => {
    writeFileSync(file, POLICY);
    const s = makeSource();
    await s.start();
    const reads = s.reads;
    replace(file, POLICY);
    await until(() => s.reads > reads);
    expect(changes).toBe(1);
    replace(file, `${POLICY}\n# touched`);
    await until(() => changes === 2);
  });
});
