import { resNet18 } from '../../../scripts/fixtures/architectures';
import { cloneModel, outputError } from './optimize.test.util';
import { optimizeModel } from './pipeline';
it('prof', () => {
  let t = Date.now();
  const out: string[] = [];
  const lap = (s: string) => { const n = Date.now(); out.push(`${s} ${n - t} ms`); t = n; };
  const m = resNet18({ inputSize: 64, numClasses: 100 }).model; lap('build');
  const opt = cloneModel(m); lap('clone');
  optimizeModel(opt); lap('optimize');
  outputError(m, opt, [1]); lap('compare');
  console.log(out.join('\n'));
});
