import { StageFn } from './index';
import type { VerifyDeps } from '../verify/run-verify';

/**
 * The verify stage (shared/DESIGN.md §2): float, quantized and `.bin` models on the same
 * samples; verify.json and a table; fails when an output's cosine is below the threshold, the
 * `.bin` is not exact, or onnxruntime is more than one step away. See verify/run-verify.ts.
 */

/** The verify stage with its `.bin` runtime injected (tests). */
export function verifyStageWith(deps: VerifyDeps): StageFn {
  return async (cfg, ctx) => {
    const { runVerify } = await import('../verify/run-verify');
    return runVerify(cfg, ctx.log, deps);
  };
}

export const verifyStage: StageFn = async (cfg, ctx) => {
  const { defaultBinEngine } = await import('../verify/bin-runtime');
  return verifyStageWith({ binEngine: defaultBinEngine() })(cfg, ctx);
};
