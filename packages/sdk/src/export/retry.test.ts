import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { backoffDelay, isDroppedConnection, isRetryableStatus, parseRetryAfter } from './retry.ts';

test('exactly 429, 502, 503 and 504 are retryable statuses', () => {
  const retryable = [];
  for (let status = 100; status < 600; status++) if (isRetryableStatus(status)) retryable.push(status);
  assert.deepEqual(retryable, [429, 502, 503, 504]);
});

test('Retry-After: delta-seconds and HTTP-dates; malformed or absent is undefined; the past is 0', () => {
  const now = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2026 07:28:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2026 07:00:00 GMT', now), 0);
  for (const bad of [undefined, null, '', '-5', '1.5', 'soon', '12abc'])
    assert.equal(parseRetryAfter(bad, now), undefined, String(bad));
});

test('backoff: full jitter within [0, min(max, base × 2^retry))', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 40 }),
      fc.double({ min: 0, max: 0.999999, noNaN: true }),
      (retry, r) => {
        const delay = backoffDelay(retry, () => r, { baseMs: 100, maxMs: 5000 });
        assert.ok(delay >= 0 && delay < Math.min(5000, 100 * 2 ** retry), `${retry} ${r} ${delay}`);
      },
    ),
  );
  assert.equal(
    backoffDelay(3, () => 0.5),
    800,
  );
  assert.equal(
    backoffDelay(30, () => 0.5),
    5000,
  );
});

test('dropped connections are recognised by code or message; other errors are not', () => {
  for (const code of ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'])
    assert.equal(isDroppedConnection(Object.assign(new Error('x'), { code })), true, code);
  assert.equal(isDroppedConnection(new Error('socket hang up')), true);
  assert.equal(isDroppedConnection(Object.assign(new Error('getaddrinfo'), { code: 'ENOTFOUND' })), false);
  assert.equal(isDroppedConnection(new TypeError('bad')), false);
});
