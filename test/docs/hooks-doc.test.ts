import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { HOOKS_DOC, HOOKS_SOURCE, renderHooksDoc } from '../../scripts/generate-hooks-doc.js';
import { HOOK_NAMES } from '../../src/index.js';

test('docs/hooks.md matches the comments in src/core/hooks.ts (run `npm run docs:hooks` after changing them)', () => {
  assert.equal(readFileSync(HOOKS_DOC, 'utf8'), renderHooksDoc(readFileSync(HOOKS_SOURCE, 'utf8')));
});

test('every hook in HOOK_NAMES is documented', () => {
  const doc = readFileSync(HOOKS_DOC, 'utf8');
  for (const name of HOOK_NAMES) assert.match(doc, new RegExp(`^## \`${name}\\(`, 'm'));
});
