/** Reconnect delays: exponential with full jitter, so a drained replica's devices spread out. */
export class Backoff {
  attempt = 0;

  /** Delay n (from 0) is uniform in [0, min(cap, base * 2**n)] seconds; `reset` after a good run. */
  constructor(
    readonly base = 0.2,
    readonly cap = 10.0,
    private readonly rand: () => number = Math.random,
  ) {
    if (!(base > 0) || cap < base) {
      throw new RangeError(`need 0 < base <= cap, got base=${base}, cap=${cap}`);
    }
  }

  /** The next delay in seconds. */
  nextDelay(): number {
    const ceiling = Math.min(this.cap, this.base * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return this.rand() * ceiling;
  }

  reset(): void {
    this.attempt = 0;
  }
}
