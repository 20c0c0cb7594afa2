import { describe, expect, it } from 'vitest';
import type { ContainerFilter, ContainerId } from '../cri/types.ts';
import { ContainerIndex } from './container-list.ts';

const id = (s: string) => s as ContainerId;
const owner = (ns: string, name: string) => ({ 'berth.dev/namespace': ns, 'berth.dev/name': name, 'berth.dev/node': 'n1' });

/** a, b: default/web; c: default/db; d: other/web (same name label, other namespace). */
function indexOfFour(): ContainerIndex {
  const index = new ContainerIndex();
  index.add(id('a'), 'default_web_1', owner('default', 'web'));
  index.add(id('b'), 'default_web_2', owner('default', 'web'));
  index.add(id('c'), 'default_db_1', owner('default', 'db'));
  index.add(id('d'), 'other_web_1', owner('other', 'web'));
  return index;
}

describe('ContainerIndex', () => {
  const cases: { name: string; filter: ContainerFilter; want: string[] }[] = [
    { name: 'every container, in the order added, without a filter', filter: {}, want: ['a', 'b', 'c', 'd'] },
    { name: 'the first smallest label set, a superset of the matches, for the owner labels', filter: { labels: owner('default', 'web') }, want: ['a', 'b', 'c'] },
    { name: 'the rarest label\'s set when labels differ in size', filter: { labels: { 'berth.dev/namespace': 'other', 'berth.dev/name': 'web' } }, want: ['d'] },
    { name: 'nothing when one label is carried by no container', filter: { labels: { 'berth.dev/name': 'web', 'berth.dev/node': 'n2' } }, want: [] },
    { name: 'only the ID given', filter: { id: id('c'), labels: owner('default', 'web') }, want: ['c'] },
    { name: 'nothing for an unknown ID', filter: { id: id('zz') }, want: [] },
  ];
  it.each(cases)('gives as candidates $name', ({ filter, want }) => {
    expect([...indexOfFour().candidates(filter)]).toEqual(want);
  });

  it('forgets a removed container in every set, and drops sets that become empty', () => {
    const index = indexOfFour();
    index.remove(id('c'), 'default_db_1', owner('default', 'db'));
    index.remove(id('c'), 'default_db_1', owner('default', 'db'));
    expect(index.size).toBe(3);
    expect([...index.candidates({ labels: { 'berth.dev/name': 'db' } })]).toEqual([]);
    expect([...index.named('default_db_1')]).toEqual([]);
    expect([...index.candidates({})]).toEqual(['a', 'b', 'd']);
  });

  it('adds a container once however often it is added, and finds it by name', () => {
    const index = indexOfFour();
    index.add(id('a'), 'default_web_1', owner('default', 'web'));
    expect(index.size).toBe(4);
    expect([...index.named('default_web_1')]).toEqual(['a']);
    index.add(id('e'), 'default_web_1', owner('default', 'web'));
    expect([...index.named('default_web_1')]).toEqual(['a', 'e']);
  });
});
