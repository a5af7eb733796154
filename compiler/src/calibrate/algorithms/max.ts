/**
 * `max` calibration: the threshold is the largest |x| seen, so nothing is clipped. Per channel
 * it is each channel's own absmax.
 */

/** Threshold of one tensor: its absmax over all samples. */
export function maxThreshold(absmax: number): number {
  return absmax;
}

/** Per-channel thresholds: each channel's absmax. */
export function maxThresholdPerChannel(perChannelAbsmax: ArrayLike<number>): number[] {
  return Array.from(perChannelAbsmax);
}
