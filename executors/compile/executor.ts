import { stageExecutor } from '../stage-executor';

/** `compile`: compile the quantized model into the .bin heterogeneous model (compiler/src/stages). */
export default stageExecutor('compile');
