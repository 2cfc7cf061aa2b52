import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRetryAfter, UpstreamHealth } from '../../src/upstream/upstream-health.js';

const options = { failureThreshold: 3, baseOpenMs: 1000, maxOpenMs: 8000, defaultCooldownMs: 30_000, maxCooldownMs: 60_000 };

test('the circuit opens after the threshold, with exponential back-off, and a probe closes it', () => {
  const health = new UpstreamHealth(options);
  health.recordFailure(0);
  health.recordFailure(0);
  assert.deepEqual(health.availability(0), { available: true, probe: false });
  health.recordFailure(0);
  assert.equal(health.availability(500).available, false);
  // Back-off over: one probe goes through, a second must wait for it.
  assert.deepEqual(health.availability(1000), { available: true, probe: true });
  health.startProbe();
  assert.equal(health.availability(1000).available, false);
  // The probe fails: open again for twice as long.
  health.recordFailure(1000);
  assert.equal(health.availability(2999).available, false);
  assert.deepEqual(health.availability(3000), { available: true, probe: true });
  health.startProbe();
  health.recordFailure(3000);
  assert.equal(health.availability(6999).available, false);
  assert.equal(health.availability(7000).available, true);
  health.startProbe();
  health.recordSuccess();
  assert.deepEqual(health.availability(7000), { available: true, probe: false });
});

test('back-off is capped at maxOpenMs', () => {
  const health = new UpstreamHealth(options);
  let now = 0;
  const openFor: number[] = [];
  for (let i = 0; i < 6; i++) {
    for (let f = 0; f < 3; f++) health.recordFailure(now);
    let t = now;
    while (!health.availability(t).available) t += 500;
    openFor.push(t - now);
    now = t;
  }
  assert.deepEqual(openFor, [1000, 2000, 4000, 8000, 8000, 8000]);
});

test('a 429 cools the upstream down for Retry-After, without counting as a failure', () => {
  const health = new UpstreamHealth(options);
  health.recordTooManyRequests(0, 2000);
  assert.match(String((health.availability(1999) as { reason: string }).reason), /cooling down after 429/);
  assert.deepEqual(health.availability(2000), { available: true, probe: false });
  health.recordTooManyRequests(0, undefined);
  assert.equal(health.availability(29_999).available, false);
  health.recordTooManyRequests(0, 10_000_000);
  assert.equal(health.availability(60_001).available, true, 'capped at maxCooldownMs');
});

test('Retry-After as seconds or an HTTP date', () => {
  assert.equal(parseRetryAfter('120', 0), 120_000);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10_000);
  assert.equal(parseRetryAfter('soon', 0), undefined);
  assert.equal(parseRetryAfter(undefined, 0), undefined);
});

test('an inconclusive outcome changes no count but ends a probe, so the half-open circuit can probe again', () => {
  const health = new UpstreamHealth(options);
  for (let i = 0; i < 3; i++) health.recordFailure(0);
  health.startProbe();
  assert.equal(health.availability(1000).available, false, 'a probe is in flight');
  health.recordInconclusive();
  assert.deepEqual(health.availability(1000), { available: true, probe: true });
  health.recordFailure(0);
  health.recordFailure(0);
  health.recordInconclusive();
  assert.deepEqual(health.availability(1000), { available: true, probe: true }, 'still half-open, not reset');
});
