import { KlOptions, klThreshold } from './algorithms/kl';
import { maxThreshold, maxThresholdPerChannel } from './algorithms/max';
import { percentileThreshold } from './algorithms/percentile';
import { TensorStatistics } from './collect';

/**
 * How a threshold is picked from the statistics: `max` (absmax; with `maxPercentile` < 1 it
 * is `percentile`), `percentile` (the `maxPercentile` quantile of |x|), `kl` (entropy).
 */
export type ThresholdMethod = 'max' | 'percentile' | 'kl';

export interface ThresholdOptions {
  /** quantile of |x| kept unclipped, in [0, 1] (`max_percentile`; 1 = absmax) */
  maxPercentile?: number;
  /** also give one threshold per channel (axis 1); the statistics must have been collected per channel */
  perChannel?: boolean;
  kl?: KlOptions;
}

export interface TensorThreshold {
  /** clipping point of |x|: values beyond ±threshold saturate */
  threshold: number;
  /** int8 activation scale, fround(threshold / 127) (DESIGN §3); see activationScale for zero */
  scale: number;
  /** per channel thresholds, when asked */
  perChannel?: number[];
  perChannelScale?: number[];
  /** the algorithm that was applied */
  method: ThresholdMethod;
  /** the quantile used by `percentile` */
  maxPercentile?: number;
}

/**
 * The int8 scale of an activation threshold: fround(threshold / 127), as stored in the model.
 * A tensor that was 0 on every sample (threshold 0) gets the scale of threshold 1, so the
 * scale stays usable as a divisor and values up to 1 still survive at run time.
 */
export function activationScale(threshold: number): number {
  return Math.fround((threshold > 0 && Number.isFinite(threshold) ? threshold : 1) / 127);
}

/**
 * Thresholds of every tensor in `stats` by one method.
 *
 * Per channel: the tensor-level method decides how far the tensor's outliers are clipped (T),
 * and channel c gets min(absmax_c, T): a channel whose whole range lies below T keeps it and
 * gets a finer scale, no channel is clipped beyond the tensor-level choice. For `max` this is
 * every channel's own absmax. (Per-channel histograms would cost O(tensors × channels × bins)
 * memory, 16 KiB per channel; the statistics hold only per-channel ranges.)
 */
export function computeThresholds(stats: Record<string, TensorStatistics>, method: ThresholdMethod, opts: ThresholdOptions = {}): Record<string, TensorThreshold> {
  const p = opts.maxPercentile ?? 1;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`maxPercentile must be within [0, 1], got ${opts.maxPercentile}`);
  if (method === 'percentile' && opts.maxPercentile === undefined) throw new Error("computeThresholds: method 'percentile' needs maxPercentile");
  const applied: ThresholdMethod = method === 'max' && p < 1 ? 'percentile' : method;
  const out: Record<string, TensorThreshold> = {};
  for (const [name, s] of Object.entries(stats)) {
    const threshold =
      applied === 'kl' ? klThreshold(s, opts.kl) :
      applied === 'percentile' ? percentileThreshold(s.histogram, s.binWidth, s.absmax, p) :
      maxThreshold(s.absmax);
    const t: TensorThreshold = { threshold, scale: activationScale(threshold), method: applied };
    if (applied === 'percentile') t.maxPercentile = p;
    if (opts.perChannel) {
      if (!s.perChannelAbsmax) throw new Error(`computeThresholds: '${name}' has no per-channel statistics (collect them with perChannel: true)`);
      t.perChannel = maxThresholdPerChannel(s.perChannelAbsmax).map((a) => Math.min(a, threshold));
      t.perChannelScale = t.perChannel.map(activationScale);
    }
    out[name] = t;
  }
  return out;
}
