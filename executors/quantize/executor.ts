import { stageExecutor } from '../stage-executor';

/** `quantize`: write the int8 quantized model (compiler/src/stages). */
export default stageExecutor('quantize');
