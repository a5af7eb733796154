import { ArchName } from '../fixtures/architectures';
import { calibrationModel, CalibrationModel, estimateFor } from '../../compiler/src/perf/calibration-models.test.util';
import { marchCosts, MarchCosts } from '../../compiler/src/perf/costs';

/**
 * Fits the constants compiler/src/perf/marchs/bernoulli2.json lists as fitted (its `about`)
 * to the published RDK X3 numbers in its `calibration.targets`, and prints the estimates
 * against the targets:
 *
 *   node -r @swc-node/register scripts/perf/fit-bernoulli2.ts          # table with the file's constants
 *   node -r @swc-node/register scripts/perf/fit-bernoulli2.ts --fit    # + the grid search (about a minute)
 *
 * The search walks a coarse grid of the fitted constants (the efficiencies of 1×1 and k×k
 * convs, the DDR efficiency, the per-layer overhead, the on-chip memory), minimising the sum
 * of squared log errors, and prints the best values to copy into the JSON by hand. Every
 * architecture uses the same constants: there is no per-model factor.
 */

interface Param {
  name: string;
  values: number[];
  set(c: MarchCosts, v: number): void;
}

const PARAMS: Param[] = [
  { name: 'efficiency.conv1x1', values: [0.35, 0.4, 0.45, 0.5, 0.55, 0.6], set: (c, v) => void (c.efficiency.conv1x1 = v) },
  {
    name: 'efficiency.conv3x3 = efficiency.convKxK',
    values: [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7],
    set: (c, v) => {
      c.efficiency.conv3x3 = v;
      c.efficiency.convKxK = v;
    },
  },
  { name: 'bpu.ddrEfficiency', values: [0.6, 0.7, 0.8], set: (c, v) => void (c.bpu.ddrEfficiency = v) },
  { name: 'bpu.opOverheadUs', values: [1, 2, 3, 4, 6], set: (c, v) => void (c.bpu.opOverheadUs = v) },
  { name: 'bpu.onChipKiB', values: [1024, 1536, 2048], set: (c, v) => void (c.bpu.onChipKiB = v) },
];

function clone(c: MarchCosts): MarchCosts {
  return JSON.parse(JSON.stringify(c)) as MarchCosts;
}

interface Row {
  model: string;
  metric: string;
  target: number;
  estimate: number;
}

function evaluate(models: Map<string, CalibrationModel>, costs: MarchCosts): Row[] {
  const cache = new Map<string, ReturnType<typeof estimateFor>>();
  return costs.calibration!.targets.map((t) => {
    let e = cache.get(t.model);
    if (!e) {
      e = estimateFor(models.get(t.model)!, {}, costs);
      cache.set(t.model, e);
    }
    return { model: t.model, metric: t.metric, target: t.ms, estimate: e.totals[t.metric] };
  });
}

function loss(rows: Row[]): number {
  return rows.reduce((s, r) => s + Math.log(r.estimate / r.target) ** 2, 0);
}

function printTable(rows: Row[]): void {
  console.log('model         metric       published  estimate  error');
  for (const r of rows) {
    const err = ((r.estimate / r.target - 1) * 100).toFixed(1);
    console.log(`${r.model.padEnd(13)} ${r.metric.padEnd(12)} ${r.target.toFixed(2).padStart(9)} ${r.estimate.toFixed(2).padStart(9)}  ${err.padStart(5)} %`);
  }
}

function main(argv: string[]): number {
  const base = marchCosts('bernoulli2');
  const names = [...new Set(base.calibration!.targets.map((t) => t.model))] as ArchName[];
  const models = new Map<string, CalibrationModel>();
  for (const n of names) models.set(n, calibrationModel(n, { softmax: n === 'mobilenetv1' }));

  console.log('constants of compiler/src/perf/marchs/bernoulli2.json:');
  printTable(evaluate(models, base));
  if (!argv.includes('--fit')) return 0;

  // the whole grid (about 2·10³ points, a minute): deterministic, no local minimum
  let best = { loss: Infinity, values: [] as number[] };
  const search = (i: number, values: number[]): void => {
    if (i === PARAMS.length) {
      const c = clone(base);
      PARAMS.forEach((p, k) => p.set(c, values[k]));
      const l = loss(evaluate(models, c));
      if (l < best.loss - 1e-12) best = { loss: l, values: values.slice() };
      return;
    }
    for (const v of PARAMS[i].values) search(i + 1, [...values, v]);
  };
  search(0, []);
  const current = clone(base);
  PARAMS.forEach((p, k) => p.set(current, best.values[k]));
  console.log(`\nbest fit (sum of squared log errors ${best.loss.toFixed(4)}):`);
  PARAMS.forEach((p, k) => console.log(`  ${p.name} = ${best.values[k]}`));
  printTable(evaluate(models, current));
  return 0;
}

process.exitCode = main(process.argv.slice(2));
