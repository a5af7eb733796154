import type { BinEngineFactory } from './run-verify';

/** The `.bin` host runtime (runtime/bin-engine.ts), loaded when first used. */
export function defaultBinEngine(): BinEngineFactory {
  return async (model, source) => {
    const { BinEngine } = await import('../runtime/bin-engine');
    return new BinEngine(model, { source });
  };
}
