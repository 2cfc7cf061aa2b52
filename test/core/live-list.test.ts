import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveList } from '../../src/core/live-list.js';

test('LiveList keeps insertion order and removes any entry in O(1), once', () => {
  const list = new LiveList<string>();
  const a = list.add('a');
  const b = list.add('b');
  const c = list.add('c');
  assert.equal(list.size, 3);
  assert.equal(b.remove(), true);
  assert.equal(b.remove(), false);
  assert.deepEqual(list.values(), ['a', 'c']);
  assert.equal(a.remove(), true);
  assert.equal(c.remove(), true);
  assert.equal(list.size, 0);
  assert.deepEqual(list.values(), []);
  list.add('d');
  assert.deepEqual(list.values(), ['d']);
});

test('LiveList values() is a copy: removing while going through it visits everything once', () => {
  const list = new LiveList<number>();
  const entries = [1, 2, 3, 4].map((n) => list.add(n));
  const seen: number[] = [];
  for (const value of list.values()) {
    seen.push(value);
    entries[value - 1]!.remove();
    if (value === 1) entries[2]!.remove();
  }
  assert.deepEqual(seen, [1, 2, 3, 4]);
  assert.equal(list.size, 0);
  assert.equal(list.some(() => true), false);
});

test('LiveList.some stops at the first match', () => {
  const list = new LiveList<number>();
  for (const n of [1, 2, 3]) list.add(n);
  const visited: number[] = [];
  assert.equal(list.some((n) => (visited.push(n), n === 2)), true);
  assert.deepEqual(visited, [1, 2]);
});
