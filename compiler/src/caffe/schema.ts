import * as path from 'path';
import * as protobuf from 'protobufjs';

/** protobufjs types for nx-ptq's own caffe.proto (compiler/proto), loaded once. */
let root: protobuf.Root | undefined;

export function caffeRoot(): protobuf.Root {
  if (!root) {
    root = new protobuf.Root();
    root.loadSync(path.join(__dirname, '..', '..', 'proto', 'caffe.proto'), { keepCase: true });
    root.resolveAll();
  }
  return root;
}

export function caffeType(name: string): protobuf.Type {
  return caffeRoot().lookupType(`caffe.${name}`);
}

/*
 * The parsed prototxt, as plain objects keyed by the proto field names (snake_case).
 * Repeated fields are arrays, enums are their value names, int64 values are numbers.
 * Only the fields the converter reads are typed here; the text parser has already checked
 * every field against caffe.proto, so the objects match these shapes.
 */

export type Phase = 'TRAIN' | 'TEST';

export interface BlobShape {
  dim?: number[];
}

export interface NetStateRule {
  phase?: Phase;
  min_level?: number;
  max_level?: number;
  stage?: string[];
  not_stage?: string[];
}

export interface NetState {
  phase?: Phase;
  level?: number;
  stage?: string[];
}

export interface ConvolutionParameter {
  num_output?: number;
  bias_term?: boolean;
  pad?: number[];
  kernel_size?: number[];
  stride?: number[];
  dilation?: number[];
  pad_h?: number;
  pad_w?: number;
  kernel_h?: number;
  kernel_w?: number;
  stride_h?: number;
  stride_w?: number;
  group?: number;
  axis?: number;
}

export interface PoolingParameter {
  pool?: 'MAX' | 'AVE' | 'STOCHASTIC';
  pad?: number;
  pad_h?: number;
  pad_w?: number;
  kernel_size?: number;
  kernel_h?: number;
  kernel_w?: number;
  stride?: number;
  stride_h?: number;
  stride_w?: number;
  global_pooling?: boolean;
  round_mode?: 'CEIL' | 'FLOOR';
}

export interface LayerParameter {
  name?: string;
  type?: string;
  bottom?: string[];
  top?: string[];
  include?: NetStateRule[];
  exclude?: NetStateRule[];
  transform_param?: { crop_size?: number };
  batch_norm_param?: { use_global_stats?: boolean; eps?: number };
  bias_param?: { axis?: number; num_axes?: number };
  clip_param?: { min?: number; max?: number };
  concat_param?: { axis?: number; concat_dim?: number };
  convolution_param?: ConvolutionParameter;
  crop_param?: { axis?: number; offset?: number[] };
  dropout_param?: { dropout_ratio?: number; scale_train?: boolean };
  eltwise_param?: { operation?: 'PROD' | 'SUM' | 'MAX'; coeff?: number[] };
  elu_param?: { alpha?: number };
  exp_param?: { base?: number; scale?: number; shift?: number };
  flatten_param?: { axis?: number; end_axis?: number };
  image_data_param?: { batch_size?: number; new_height?: number; new_width?: number; is_color?: boolean; crop_size?: number };
  inner_product_param?: { num_output?: number; bias_term?: boolean; axis?: number; transpose?: boolean };
  input_param?: { shape?: BlobShape[] };
  log_param?: { base?: number; scale?: number; shift?: number };
  lrn_param?: { local_size?: number; alpha?: number; beta?: number; norm_region?: 'ACROSS_CHANNELS' | 'WITHIN_CHANNEL'; k?: number };
  memory_data_param?: { batch_size?: number; channels?: number; height?: number; width?: number };
  permute_param?: { order?: number[] };
  pooling_param?: PoolingParameter;
  power_param?: { power?: number; scale?: number; shift?: number };
  prelu_param?: { channel_shared?: boolean };
  relu_param?: { negative_slope?: number };
  reshape_param?: { shape?: BlobShape; axis?: number; num_axes?: number };
  scale_param?: { axis?: number; num_axes?: number; bias_term?: boolean };
  softmax_param?: { axis?: number };
  slice_param?: { axis?: number; slice_point?: number[]; slice_dim?: number };
  swish_param?: { beta?: number };
  threshold_param?: { threshold?: number };
  upsample_param?: { scale?: number; scale_h?: number; scale_w?: number };
}

export interface V1LayerParameter extends Omit<LayerParameter, 'type'> {
  type?: string;
}

export interface NetParameter {
  name?: string;
  input?: string[];
  input_shape?: BlobShape[];
  input_dim?: number[];
  state?: NetState;
  layer?: LayerParameter[];
  layers?: V1LayerParameter[];
}

/** V1LayerParameter.LayerType names → the layer type strings of LayerParameter. */
export const V1_LAYER_TYPES: Readonly<Record<string, string>> = {
  ABSVAL: 'AbsVal',
  ACCURACY: 'Accuracy',
  ARGMAX: 'ArgMax',
  BNLL: 'BNLL',
  CONCAT: 'Concat',
  CONTRASTIVE_LOSS: 'ContrastiveLoss',
  CONVOLUTION: 'Convolution',
  DATA: 'Data',
  DECONVOLUTION: 'Deconvolution',
  DROPOUT: 'Dropout',
  DUMMY_DATA: 'DummyData',
  EUCLIDEAN_LOSS: 'EuclideanLoss',
  ELTWISE: 'Eltwise',
  EXP: 'Exp',
  FLATTEN: 'Flatten',
  HDF5_DATA: 'HDF5Data',
  HDF5_OUTPUT: 'HDF5Output',
  HINGE_LOSS: 'HingeLoss',
  IM2COL: 'Im2col',
  IMAGE_DATA: 'ImageData',
  INFOGAIN_LOSS: 'InfogainLoss',
  INNER_PRODUCT: 'InnerProduct',
  LRN: 'LRN',
  MEMORY_DATA: 'MemoryData',
  MULTINOMIAL_LOGISTIC_LOSS: 'MultinomialLogisticLoss',
  MVN: 'MVN',
  POOLING: 'Pooling',
  POWER: 'Power',
  RELU: 'ReLU',
  SIGMOID: 'Sigmoid',
  SIGMOID_CROSS_ENTROPY_LOSS: 'SigmoidCrossEntropyLoss',
  SILENCE: 'Silence',
  SOFTMAX: 'Softmax',
  SOFTMAX_LOSS: 'SoftmaxWithLoss',
  SPLIT: 'Split',
  SLICE: 'Slice',
  TANH: 'TanH',
  WINDOW_DATA: 'WindowData',
  THRESHOLD: 'Threshold',
};
