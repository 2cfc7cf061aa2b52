import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeaderList } from '../../src/core/header-list.js';

test('get/getAll/has are case-insensitive and keep the original case', () => {
  const headers = new HeaderList(['Set-Cookie', 'a=1', 'X-Y', 'z', 'set-cookie', 'b=2']);
  assert.equal(headers.get('SET-COOKIE'), 'a=1');
  assert.deepEqual(headers.getAll('set-cookie'), ['a=1', 'b=2']);
  assert.equal(headers.has('x-y'), true);
  assert.equal(headers.has('x-z'), false);
  assert.equal(headers.size, 3);
});

test('set replaces the first field in place and drops the others', () => {
  const headers = new HeaderList(['A', '1', 'Host', 'old', 'B', '2', 'host', 'older']);
  headers.set('HOST', 'new');
  assert.deepEqual(headers.toRaw(), ['A', '1', 'Host', 'new', 'B', '2']);
  headers.set('C', '3');
  assert.deepEqual(headers.toRaw(), ['A', '1', 'Host', 'new', 'B', '2', 'C', '3']);
});

test('delete removes every field of that name and reports how many', () => {
  const headers = new HeaderList(['A', '1', 'a', '2', 'B', '3', 'A', '4']);
  assert.equal(headers.delete('a'), 3);
  assert.deepEqual(headers.toRaw(), ['B', '3']);
  assert.equal(headers.delete('a'), 0);
});

test('getTokens splits list-based fields across lines', () => {
  const headers = new HeaderList(['Connection', 'Keep-Alive, X-A', 'Connection', ' upgrade ,,']);
  assert.deepEqual(headers.getTokens('connection'), ['keep-alive', 'x-a', 'upgrade']);
});

test('clone and toRaw return copies', () => {
  const headers = new HeaderList(['A', '1']);
  const copy = headers.clone();
  copy.append('B', '2');
  const raw = headers.toRaw();
  raw.push('C', '3');
  assert.deepEqual(headers.toRaw(), ['A', '1']);
  assert.deepEqual(HeaderList.fromPairs(copy).toJSON(), [['A', '1'], ['B', '2']]);
});

test('deleteWhere removes in one pass by lower-cased name and keeps the order of the rest', () => {
  const headers = new HeaderList(['Keep-Alive', '1', 'A', 'x', 'Connection', 'close', 'B', 'y', 'KEEP-ALIVE', '2']);
  const seen: string[] = [];
  const removed = headers.deleteWhere((name) => {
    seen.push(name);
    return name === 'keep-alive' || name === 'connection';
  });
  assert.equal(removed, 3);
  assert.deepEqual(seen, ['keep-alive', 'a', 'connection', 'b', 'keep-alive']);
  assert.deepEqual(headers.toRaw(), ['A', 'x', 'B', 'y']);
  assert.equal(headers.deleteWhere(() => false), 0);
});
