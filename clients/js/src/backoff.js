// Exponential backoff with full jitter: the n-th retry (from 0) waits a
// uniformly random time in [0, min(max, min * 2^n)] milliseconds, so that
// clients cut off together do not come back together.
export function backoffCap(attempt, { min = 500, max = 30000 } = {}) {
  return Math.min(max, min * 2 ** Math.min(attempt, 30));
}

export function backoffDelay(attempt, options = {}, random = Math.random) {
  return Math.floor(random() * backoffCap(attempt, options));
}
