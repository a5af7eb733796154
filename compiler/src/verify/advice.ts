import type { PtqConfig } from '../config';

/**
 * What to try when the quantized model drifts from the float model, in the order the reference
 * recommends for accuracy tuning (its "Minor Accuracy Improvement" section): the calibration
 * method (default's automatic search, then kl/max by hand), max with a lower max_percentile,
 * per_channel, the calibration data, one or two output-layer operators on the CPU
 * (run_on_cpu), int16 for sensitive operators on RDK Ultra (bayes), then the accuracy
 * debugger. Steps the config already takes are left out.
 */

export interface AdviceContext {
  /** nodes with the lowest cosine in the quantize stage's table (run_on_cpu candidates) */
  weakNodes?: string[];
}

export function tuningSteps(cfg: Pick<PtqConfig, 'calibration' | 'model'>, ctx: AdviceContext = {}): string[] {
  const cal = cfg.calibration;
  const steps: string[] = [];
  if (cal.calibrationType !== 'default') steps.push("calibration_type: 'default' (automatic search of max/percentile/kl)");
  else steps.push("calibration_type 'kl' or 'max' by hand");
  if (cal.calibrationType !== 'max' || cal.maxPercentile === undefined || cal.maxPercentile >= 1) {
    steps.push("calibration_type 'max' with max_percentile 0.99999, 0.99995, 0.9999, 0.9995, 0.999");
  } else {
    const next = [0.99999, 0.99995, 0.9999, 0.9995, 0.999].filter((p) => p < (cal.maxPercentile as number));
    if (next.length) steps.push(`a lower max_percentile (${next.join(', ')})`);
  }
  if (!cal.perChannel) steps.push('per_channel: True');
  steps.push('more, or more representative, calibration data (about 100 samples covering every scene and class)');
  const weak = (ctx.weakNodes ?? []).slice(0, 2);
  steps.push(`run_on_cpu for 1-2 operators of the output layer${weak.length ? ` (lowest cosine: ${weak.join(', ')})` : ''}`);
  if (cfg.model.march === 'bayes') steps.push("int16 for quantization-sensitive operators (node_info: 'name:int16')");
  steps.push("the accuracy debugger (ptq debugger: node sensitivity, cumulative error)");
  return steps;
}

/** One line: `try, in order: 1) ...; 2) ...`. */
export function tuningAdvice(cfg: Pick<PtqConfig, 'calibration' | 'model'>, ctx: AdviceContext = {}): string {
  return `try, in order: ${tuningSteps(cfg, ctx).map((s, i) => `${i + 1}) ${s}`).join('; ')}`;
}
