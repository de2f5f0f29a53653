// Orders of the stage graph that analysis reports: a stable topological order (file order where
// the graph allows) and one concrete cycle to name when there is none.
import type { Graph } from '@dagrejs/graphlib';

/** Kahn's algorithm, taking ready stages in file order, so runs and listings read like the file. */
export function topoOrder<Node extends { id: string }>(graph: Graph, nodes: Node[]): Node[] {
  const indeg = new Map(nodes.map((n) => [n.id, graph.predecessors(n.id)?.length ?? 0]));
  const position = new Map(nodes.map((n, i) => [n.id, i]));
  // A binary min-heap of file positions: sorting the ready list on every step was quadratic.
  const heap: number[] = [];
  const push = (x: number): void => {
    let i = heap.push(x) - 1;
    while (i > 0 && heap[(i - 1) >> 1]! > heap[i]!) {
      const p = (i - 1) >> 1;
      [heap[p], heap[i]] = [heap[i]!, heap[p]!];
      i = p;
    }
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1,
          r = l + 1;
        let m = i;
        if (l < heap.length && heap[l]! < heap[m]!) m = l;
        if (r < heap.length && heap[r]! < heap[m]!) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
    return top;
  };
  nodes.forEach((n, i) => {
    if (indeg.get(n.id) === 0) push(i);
  });
  const order: Node[] = [];
  while (heap.length) {
    const node = nodes[pop()]!;
    order.push(node);
    for (const next of graph.successors(node.id) ?? []) {
      const d = indeg.get(next)! - 1;
      indeg.set(next, d);
      if (d === 0) push(position.get(next)!);
    }
  }
  return order;
}

/** One concrete cycle inside a strongly connected component, as a → b → … → a. */
export function cyclePath(graph: Graph, scc: string[]): string[] {
  const members = new Set(scc);
  const start = [...scc].sort()[0]!;
  const path = [start];
  const onPath = new Set(path);
  for (;;) {
    const here = path[path.length - 1]!;
    const next = (graph.successors(here) ?? []).filter((s) => members.has(s)).sort();
    const closing = next.find((s) => onPath.has(s));
    if (closing !== undefined) return [...path.slice(path.indexOf(closing)), closing];
    path.push(next[0]!);
    onPath.add(next[0]!);
  }
}
