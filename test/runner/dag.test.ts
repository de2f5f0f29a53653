// `podium dag`: the graph as text, Mermaid and DOT, from the real binary.
import { afterEach, describe, expect, it } from 'vitest';
import { commandPipeline, Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

function write(): void {
  project = new Project();
  project.write(
    'p.json',
    commandPipeline({
      data: { run: 'true' },
      aug: { run: 'true' },
      fit: { run: 'true', inputs: { d: 'data', a: 'aug' }, matrix: { env: [{ LR: '0.1' }, { LR: '0.2' }] } },
      fuse: { run: 'true', inputs: { models: 'fit' } },
    }),
  );
}

describe('podium dag', () => {
  it('prints the graph as indented text: depth by longest path, inputs named, matrix points with their alias', async () => {
    write();
    const r = await project.cli('dag', 'p.json');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(
      [
        'test: 4 stages, 5 with matrix points',
        'data (command)',
        'aug (command)',
        '  fit (command, 2 points) ← data, aug',
        '      fit@0  fit@env={"LR":"0.1"}',
        '      fit@1  fit@env={"LR":"0.2"}',
        '    fuse (command) ← fit',
      ].join('\n'),
    );
  });

  it('--format mermaid: a flowchart, a matrix as a subgraph, every edge between concrete stages', async () => {
    write();
    const r = await project.cli('dag', 'p.json', '--format', 'mermaid');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(
      [
        'flowchart TD',
        '  n0["data (command)"]',
        '  n1["aug (command)"]',
        '  subgraph g2["fit (command)"]',
        '    n3["fit@0: env={#quot;LR#quot;:#quot;0.1#quot;}"]',
        '    n4["fit@1: env={#quot;LR#quot;:#quot;0.2#quot;}"]',
        '  end',
        '  n5["fuse (command)"]',
        '  n0 --> n3',
        '  n1 --> n3',
        '  n0 --> n4',
        '  n1 --> n4',
        '  n3 --> n5',
        '  n4 --> n5',
      ].join('\n'),
    );
  });

  it('--format dot: Graphviz with a cluster per matrix, ids quoted and escaped', async () => {
    write();
    const r = await project.cli('dag', 'p.json', '--format', 'dot', '--set', 'fuse.params.run=echo');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('digraph "test" {');
    expect(r.stdout).toContain(
      '  subgraph "cluster_fit" {\n    label="fit (command)";\n    "fit@env={\\"LR\\":\\"0.1\\"}" [label="fit@0\\nenv={\\"LR\\":\\"0.1\\"}"];',
    );
    expect(r.stdout).toContain('  "fit@env={\\"LR\\":\\"0.2\\"}" -> "fuse";');
    expect(r.stdout.trimEnd().endsWith('}')).toBe(true);
    expect(r.stdout.match(/ -> /g)).toHaveLength(6);
  });

  it('an invalid pipeline is the same located error as for run, exit 2', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ a: { run: 'true', inputs: { x: 'nope' } } }));
    const r = await project.cli('dag', 'p.json');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/p\.json:\d+:\d+ \/stages\/a\/inputs\/x: unknown input reference "nope"/);
  });
});
