import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff } from "./backoff.mjs";

test("delays grow exponentially up to the cap, with full jitter", () => {
  const top = new Backoff(0.2, 1.0, () => 1);
  assert.deepEqual([0, 1, 2, 3, 4].map(() => top.nextDelay()), [0.2, 0.4, 0.8, 1.0, 1.0]);
  const bottom = new Backoff(0.2, 1.0, () => 0);
  assert.equal(bottom.nextDelay(), 0);
});

test("reset starts over", () => {
  const backoff = new Backoff(0.5, 10, () => 1);
  backoff.nextDelay();
  backoff.nextDelay();
  backoff.reset();
  assert.equal(backoff.nextDelay(), 0.5);
});

test("bad bounds are refused", () => {
  assert.throws(() => new Backoff(0, 1), RangeError);
  assert.throws(() => new Backoff(2, 1), RangeError);
});
