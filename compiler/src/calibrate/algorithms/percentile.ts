/**
 * `max` with `max_percentile` < 1: clip the rarest |x|. The threshold is the smallest bin edge
 * of the |x| histogram at or below which at least `percentile` of the elements fall: for
 * bins of width w and counts h[k], the first k with h[0] + … + h[k] ≥ percentile · Σh gives
 * (k + 1) · w (capped at absmax). It is never below the exact order statistic of rank
 * ⌈percentile · N⌉ and exceeds it by less than one bin (absmax / 2048). percentile 1 is absmax.
 */
export function percentileThreshold(histogram: ArrayLike<number>, binWidth: number, absmax: number, percentile: number): number {
  if (!(percentile >= 0 && percentile <= 1)) throw new RangeError(`percentile must be within [0, 1], got ${percentile}`);
  if (percentile === 1) return absmax;
  let total = 0;
  for (let k = 0; k < histogram.length; k++) total += histogram[k];
  if (total === 0) return 0;
  const target = percentile * total;
  let cumulative = 0;
  for (let k = 0; k < histogram.length; k++) {
    cumulative += histogram[k];
    if (cumulative >= target && cumulative > 0) return Math.min((k + 1) * binWidth, absmax);
  }
  return absmax;
}
