import { stageExecutor } from '../stage-executor';

/** `preprocess`: convert the calibration samples (cal_data_dir) to calibration_data/ in the training input format (compiler/src/stages). */
export default stageExecutor('preprocess');
