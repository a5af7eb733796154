import { stageExecutor } from '../stage-executor';

/** `verify`: verify that the float, quantized and .bin models agree (compiler/src/stages). */
export default stageExecutor('verify');
