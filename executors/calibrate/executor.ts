import { stageExecutor } from '../stage-executor';

/** `calibrate`: calibrate activation thresholds and write the QDQ calibrated model (compiler/src/stages). */
export default stageExecutor('calibrate');
