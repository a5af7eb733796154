import { stageExecutor } from '../stage-executor';

/** `check`: check the float model, insert the input preprocessing, optimise it and place ops on BPU/CPU (compiler/src/stages). */
export default stageExecutor('check');
