/**
 * The typed, normalised form of a model's YAML configuration (`PtqConfig`). Everything the
 * stages read comes from here: lists are split, per-input values are arrays in `input_name`
 * order, numbers are parsed, defaults applied and paths absolute. The YAML key each field
 * comes from is named in its comment.
 */

export const MARCHES = ['bernoulli2', 'bayes'] as const;
export type March = (typeof MARCHES)[number];

export type ModelKind = 'onnx' | 'caffe';

export const INPUT_TYPES_TRAIN = ['rgb', 'bgr', 'yuv444', 'gray', 'featuremap'] as const;
export type InputTypeTrain = (typeof INPUT_TYPES_TRAIN)[number];

export const INPUT_TYPES_RT = ['nv12', 'yuv444', 'rgb', 'bgr', 'gray', 'featuremap'] as const;
export type InputTypeRt = (typeof INPUT_TYPES_RT)[number];

export const LAYOUTS = ['NCHW', 'NHWC'] as const;
export type Layout = (typeof LAYOUTS)[number];

export const SPACES_AND_RANGES = ['regular', 'bt601_video'] as const;
export type SpaceAndRange = (typeof SPACES_AND_RANGES)[number];

export const NORM_TYPES = ['data_mean_and_scale', 'data_mean', 'data_scale', 'no_preprocess'] as const;
export type NormType = (typeof NORM_TYPES)[number];

export const CAL_DATA_TYPES = ['float32', 'uint8'] as const;
export type CalDataType = (typeof CAL_DATA_TYPES)[number];

export const CALIBRATION_TYPES = ['default', 'mix', 'kl', 'max', 'load', 'skip'] as const;
export type CalibrationType = (typeof CALIBRATION_TYPES)[number];

export const REMOVE_NODE_TYPES = ['Quantize', 'Transpose', 'Dequantize', 'Cast', 'Reshape'] as const;
export type RemoveNodeType = (typeof REMOVE_NODE_TYPES)[number];

export const DEBUG_MODES = ['dump_calibration_data'] as const;
export type DebugMode = (typeof DEBUG_MODES)[number];

export const OPTIMIZATIONS = ['set_model_output_int8', 'set_model_output_int16'] as const;
export type Optimization = (typeof OPTIMIZATIONS)[number];

export const COMPILE_MODES = ['latency', 'bandwidth'] as const;
export type CompileMode = (typeof COMPILE_MODES)[number];

export const OPTIMIZE_LEVELS = ['O0', 'O1', 'O2', 'O3'] as const;
export type OptimizeLevel = (typeof OPTIMIZE_LEVELS)[number];

export const INPUT_SOURCES = ['ddr', 'pyramid', 'resizer'] as const;
export type InputSource = (typeof INPUT_SOURCES)[number];

export const NODE_DATA_TYPES = ['int8', 'int16'] as const;
export type NodeDataType = (typeof NODE_DATA_TYPES)[number];

export const PLACEMENTS = ['BPU', 'CPU'] as const;
export type Placement = (typeof PLACEMENTS)[number];

export const CUSTOM_OP_METHODS = ['register'] as const;
export type CustomOpMethod = (typeof CUSTOM_OP_METHODS)[number];

/** One node's entry of `node_info` (bayes only). */
export interface NodeInfo {
  /** `ON`: force the node onto the BPU or the CPU. */
  on?: Placement;
  /** `InputType`: data type of all inputs. */
  inputType?: NodeDataType;
  /** `InputType<i>`: data type of input i (overrides `inputType` for that input). */
  inputTypes?: Record<number, NodeDataType>;
  /** `OutputType`: data type of all outputs. */
  outputType?: NodeDataType;
}

/** One model input, from the `;`-separated per-input keys of `input_parameters` (and `cal_data_*`). */
export interface InputConfig {
  /** `input_name`; undefined when the key is omitted (single-input model) until `validateAgainstModel` fills it. */
  name?: string;
  /** `input_type_train` */
  typeTrain: InputTypeTrain;
  /** `input_layout_train` */
  layoutTrain: Layout;
  /** `input_type_rt` */
  typeRt: InputTypeRt;
  /** `input_layout_rt`; undefined for nv12, whose layout is fixed (Y plane + interleaved UV). */
  layoutRt?: Layout;
  /** `input_space_and_range` (default `regular`; only nv12 may use `bt601_video`). */
  spaceAndRange: SpaceAndRange;
  /** `input_shape`; undefined = read from the model (`'None'` or key omitted). */
  shape?: number[];
  /** `norm_type` */
  normType: NormType;
  /** `mean_value`: one value for all channels or one per channel; undefined = `'None'`. */
  mean?: number[];
  /** `scale_value`: one value for all channels or one per channel; undefined = `'None'`. */
  scale?: number[];
  /** `cal_data_dir`, absolute; undefined when `calibration_type` is load/skip and it was not given. */
  calDataDir?: string;
  /** `cal_data_type`; undefined = inferred from the file names (`_f32` → float32, else uint8). */
  calDataType?: CalDataType;
  /** `compiler_parameters.input_source` for this input, or the default: pyramid for nv12, ddr otherwise. */
  source: InputSource;
}

export interface ModelParameters {
  /** onnx when `onnx_model` is used, caffe when `prototxt` + `caffe_model` are. */
  kind: ModelKind;
  /** `onnx_model`, absolute */
  onnxModel?: string;
  /** `prototxt`, absolute */
  prototxt?: string;
  /** `caffe_model`, absolute */
  caffeModel?: string;
  /** `march` */
  march: March;
  /** `output_model_file_prefix` */
  outputModelFilePrefix: string;
  /** `working_dir`, absolute (default `model_output` next to the YAML). */
  workingDir: string;
  /** `layer_out_dump` (default false) */
  layerOutDump: boolean;
  /** `output_nodes` (empty = the model's own outputs) */
  outputNodes: string[];
  /** `remove_node_type`, in the given order */
  removeNodeType: RemoveNodeType[];
  /** `remove_node_name`, in the given order */
  removeNodeName: string[];
  /** `set_node_data_type` (bayes only): nodes whose output is int16. */
  setNodeDataType: string[];
  /** `debug_mode` */
  debugMode?: DebugMode;
  /** `node_info` as written (bayes only). See `PtqConfig.nodes` for the merged view. */
  nodeInfo: Record<string, NodeInfo>;
}

export interface CalibrationParameters {
  /** `calibration_type` */
  calibrationType: CalibrationType;
  /** `max_percentile` (only with `max`; default 1.0 there) */
  maxPercentile?: number;
  /** `per_channel` (default false) */
  perChannel: boolean;
  /**
   * `bias_correction` (nx-ptq extension, default false): each BPU Conv/Gemm bias absorbs the mean
   * output shift its weight quantization causes on the calibration data (calibrate/bias-correction.ts)
   */
  biasCorrection?: boolean;
  /**
   * `histogram_sample` (nx-ptq extension): the histograms of |x| take at most this many values
   * of each tensor per sample, in one pass with the exact ranges (calibrate/sampled.ts); 0 counts
   * every value in two passes. Absent: DEFAULT_HISTOGRAM_SAMPLE.
   */
  histogramSample?: number;
  /** `preprocess_on` (default false) */
  preprocessOn: boolean;
  /** `run_on_cpu` */
  runOnCpu: string[];
  /** `run_on_bpu` */
  runOnBpu: string[];
  /** `optimization`; undefined = outputs stay float32. */
  optimization?: Optimization;
}

export interface CompilerParameters {
  /** `compile_mode` (default latency) */
  compileMode: CompileMode;
  /** `debug` (default false) */
  debug: boolean;
  /** `core_num` (default 1; bernoulli2 only) */
  coreNum: number;
  /** `optimize_level` */
  optimizeLevel: OptimizeLevel;
  /** `input_source` as written: input name → source. The resolved value per input is `InputConfig.source`. */
  inputSource: Record<string, InputSource>;
  /** `max_time_per_fc` in µs (default 0 = no limit) */
  maxTimePerFc: number;
  /** `jobs`; undefined = let the compiler choose. */
  jobs?: number;
}

export interface CustomOpParameters {
  /** `custom_op_method` (default register) */
  method: CustomOpMethod;
  /** `op_register_files`, absolute (resolved against `custom_op_dir`, else the YAML's folder) */
  registerFiles: string[];
  /** `custom_op_dir`, absolute */
  dir?: string;
}

/** Where the configuration came from: used to put file:line on later errors. */
export interface ConfigSource {
  /** The YAML file as the caller named it (used in messages); undefined for in-memory text. */
  file?: string;
  /** Absolute folder relative paths were resolved against. */
  dir: string;
  /** 1-based line of each group (`group`) and key (`group.key`) in the YAML. */
  lines: Record<string, number>;
  /** the YAML's `nx-ptq:` group as written (read by the Nx plugin and the verify stage), if any */
  nxPtq?: unknown;
}

export interface PtqConfig {
  source: ConfigSource;
  model: ModelParameters;
  /** One entry per input, in `input_name` order. */
  inputs: InputConfig[];
  /** `input_batch` (default 1) */
  inputBatch: number;
  calibration: CalibrationParameters;
  compiler: CompilerParameters;
  /** The `custom_op` group, when present. */
  customOp?: CustomOpParameters;
  /**
   * Per-node overrides merged from `node_info`, `set_node_data_type` (OutputType int16),
   * `run_on_cpu` (ON CPU) and `run_on_bpu` (ON BPU); what later stages should read.
   */
  nodes: Record<string, NodeInfo>;
}

/** A model input as the model file declares it (a dim that is not a positive integer is dynamic). */
export interface ModelInput {
  name: string;
  shape: readonly (number | string)[];
}
