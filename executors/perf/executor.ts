import { stageExecutor } from '../stage-executor';

/** `perf`: estimate the performance of the .bin model (hb_perf_result/) (compiler/src/stages). */
export default stageExecutor('perf');
