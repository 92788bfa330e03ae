import { LocalUpstreams } from '../../../dataplane/registry/local-upstreams';
import type { Upstream } from '../../../dataplane/registry/upstream';

function upstream(id: string, endpointId = 'e'): Upstream {
  return { id, endpointId, available: true, open: () => Promise.reject(new Error('unused')) };
}

describe('LocalUpstreams', () => {
  it('serves an endpoint round robin', () => {
    const table = new LocalUpstreams();
    const [a, b, c] = [upstream('a'), upstream('b'), upstream('c')];
    table.add(a);
    table.add(b);
    table.add(c);
    const firsts = [0, 1, 2, 3].map(() => table.candidates('e')[0]?.id);
    expect(firsts).toEqual(['a', 'b', 'c', 'a']);
    expect(table.candidates('e').map((u) => u.id)).toEqual(['b', 'c', 'a']);
  });

  it('counts each upstream once, however often it is removed', () => {
    const table = new LocalUpstreams();
    const changes: [string, number][] = [];
    table.on('change', (id, n) => changes.push([id, n]));
    const a = upstream('a');
    const b = upstream('b');
    table.add(a);
    table.add(b);
    table.remove(a);
    table.remove(a);
    expect(table.count('e')).toBe(1);
    expect(table.upstreamCount).toBe(1);
    expect(changes).toEqual([
      ['e', 1],
      ['e', 2],
      ['e', 1],
    ]);
    table.remove(b);
    expect(table.snapshot()).toEqual({});
    expect(table.endpointCount).toBe(0);
  });

  it('keeps the rotation fair after a removal', () => {
    const table = new LocalUpstreams();
    const [a, b, c] = [upstream('a'), upstream('b'), upstream('c')];
    [a, b, c].forEach((u) => table.add(u));
    table.candidates('e'); // a
    table.candidates('e'); // b
    table.remove(a);
    expect(table.candidates('e')[0]?.id).toBe('c');
  });
});
