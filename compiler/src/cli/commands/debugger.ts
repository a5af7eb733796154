import { parseNameList, parseNodeList, unbalanced } from '../../debug/lists';
import { PtqError } from '../../errors';
import { CliIO, Command } from '../command';

/**
 * `ptq debugger <subcommand> MODEL DATA [options]`: the accuracy debugger (the reference's
 * `hmct-debugger`), on a `***_calibrated_model.onnx` and its `calibration_data/` folder.
 * Subcommands and flags keep the reference's names; values may be written as the reference's
 * examples write them (`-m ['cosine-similarity','mse']`, `-q [['Conv_2'],['Conv_2','Conv_90']]`,
 * `-v True`), as comma lists, or as several words after the flag once MODEL and DATA are given.
 */

type Kind = 'list' | 'nested' | 'string' | 'int' | 'bool';

interface Opt {
  key: string;
  /** long names without dashes (the reference's, with '_'; '-' spellings are accepted too) */
  long: string;
  short?: string;
  kind: Kind;
  value?: string;
  choices?: string[];
  help: string;
}

interface Sub {
  summary: string;
  options: Opt[];
  required?: string[];
}

const METRIC_HELP = 'cosine-similarity, mse, mre, sqnr or chebyshev';
const ENGINE: Opt = { key: 'engine', long: 'engine', kind: 'string', value: 'ENGINE', choices: ['auto', 'ort', 'reference'], help: 'engine for the runs (default auto: onnxruntime unless the model has custom operators)' };
const DATA_NUM = (short: string): Opt => ({ key: 'dataNum', long: 'data_num', short, kind: 'int', value: 'N', help: 'samples to use (default all)' });
const CACHE_MB: Opt = { key: 'cacheMb', long: 'cache_mb', kind: 'int', value: 'MB', help: 'memory for the float values the sensitivity reuses (default 1024; more samples are done in chunks)' };
const SAVE_DIR: Opt = { key: 'saveDir', long: 'save_dir', short: 's', kind: 'string', value: 'DIR', help: 'where the result folder goes (default: the current folder)' };

const SUBCOMMANDS: Record<string, Sub> = {
  'get-sensitivity-of-nodes': {
    summary: 'quantize one node at a time and rank the nodes by the output error (prints the table with -v True, else the JSON dict)',
    options: [
      { key: 'metrics', long: 'metrics', short: 'm', kind: 'list', value: 'METRICS', help: `${METRIC_HELP}; the ranking uses the first (default cosine-similarity)` },
      { key: 'outputNode', long: 'output_node', short: 'o', kind: 'string', value: 'NODE', help: 'measure this ordinary node’s output instead of the model outputs' },
      { key: 'nodeType', long: 'node_type', short: 'n', kind: 'string', value: 'TYPE', choices: ['node', 'weight', 'activation'], help: 'node (ordinary nodes), weight or activation (calibration nodes) (default node)' },
      DATA_NUM('d'),
      { key: 'verbose', long: 'verbose', short: 'v', kind: 'bool', help: 'print the sorted table (True/False, default False)' },
      { key: 'interestedNodes', long: 'interested_nodes', short: 'i', kind: 'list', value: 'NODES', help: 'only these nodes (any type; wins over node_type)' },
      CACHE_MB,
      ENGINE,
    ],
  },
  'plot-acc-error': {
    summary: 'cumulative error curves of partially quantized models across the nodes (accumulate_error/)',
    options: [
      SAVE_DIR,
      { key: 'quantizeNode', long: 'quantize_node', short: 'q', kind: 'nested', value: 'NODES', help: "quantize these, keep the rest float: a list (each alone), a nested list (each sub-list together), 'weight', 'activation'" },
      { key: 'nonQuantizeNode', long: 'non_quantize_node', short: 'nq', kind: 'nested', value: 'NODES', help: 'keep these float, quantize the rest (same forms as -q)' },
      { key: 'metric', long: 'metric', short: 'm', kind: 'string', value: 'METRIC', help: `${METRIC_HELP} (default cosine-similarity)` },
      { key: 'averageMode', long: 'average_mode', short: 'a', kind: 'bool', help: 'plot the running mean of the curve (True/False, default False)' },
      DATA_NUM('d'),
      ENGINE,
    ],
  },
  'plot-distribution': {
    summary: 'distributions of weights, activations and node outputs with the calibration thresholds (distribution/)',
    options: [SAVE_DIR, { key: 'nodesList', long: 'nodes_list', short: 'n', kind: 'list', value: 'NODES', help: 'weight/activation calibration nodes and ordinary nodes' }, DATA_NUM('d'), ENGINE],
    required: ['nodesList'],
  },
  'get-channelwise-data-distribution': {
    summary: 'per-channel box plots of calibration nodes’ data (channelwise_distribution/)',
    options: [
      SAVE_DIR,
      { key: 'nodesList', long: 'nodes_list', short: 'n', kind: 'list', value: 'NODES', help: 'weight and activation calibration nodes' },
      { key: 'axis', long: 'axis', short: 'a', kind: 'int', value: 'AXIS', help: 'channel axis (default: 1 for activations, the node’s own axis for weights)' },
      DATA_NUM('d'),
      ENGINE,
    ],
    required: ['nodesList'],
  },
  runall: {
    summary: 'the four steps (sensitivity, distributions, box plots, cumulative error) with an index.html (runall/)',
    options: [
      SAVE_DIR,
      { key: 'nsMetrics', long: 'ns_metrics', short: 'nm', kind: 'list', value: 'METRICS', help: `sensitivity metrics: ${METRIC_HELP} (default cosine-similarity)` },
      { key: 'outputNode', long: 'output_node', short: 'o', kind: 'string', value: 'NODE', help: 'measure sensitivity at this node’s output' },
      { key: 'nodeType', long: 'node_type', short: 'nt', kind: 'string', value: 'TYPE', choices: ['node', 'weight', 'activation'], help: 'sensitivity of this type only (default: weight and activation)' },
      DATA_NUM('dn'),
      { key: 'verbose', long: 'verbose', short: 'v', kind: 'bool', help: 'print the sensitivity tables (True/False)' },
      { key: 'interestedNodes', long: 'interested_nodes', short: 'i', kind: 'list', value: 'NODES', help: 'sensitivity of these nodes only' },
      { key: 'disNodesList', long: 'dis_nodes_list', short: 'dnl', kind: 'list', value: 'NODES', help: 'nodes for the distributions (default: the top 5 of each sensitivity table)' },
      { key: 'cwNodesList', long: 'cw_nodes_list', short: 'cn', kind: 'list', value: 'NODES', help: 'calibration nodes for the box plots (default: those of the distributions)' },
      { key: 'axis', long: 'axis', short: 'a', kind: 'int', value: 'AXIS', help: 'channel axis of the box plots' },
      { key: 'quantizeNode', long: 'quantize_node', short: 'qn', kind: 'nested', value: 'NODES', help: "cumulative error: quantize these (default ['weight','activation'])" },
      { key: 'nonQuantizeNode', long: 'non_quantize_node', short: 'nqn', kind: 'nested', value: 'NODES', help: 'cumulative error: keep these float' },
      { key: 'aeMetric', long: 'ae_metric', short: 'am', kind: 'string', value: 'METRIC', help: `cumulative error metric: ${METRIC_HELP}` },
      { key: 'averageMode', long: 'average_mode', short: 'avm', kind: 'bool', help: 'running mean of the cumulative error (True/False)' },
      CACHE_MB,
      ENGINE,
    ],
  },
};

function subHelp(name: string): string {
  const sub = SUBCOMMANDS[name];
  const rows = sub.options.map((o) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${o.long}${o.kind === 'bool' ? ' [True|False]' : ` ${o.value ?? 'VALUE'}`}`;
    return [flag, `${o.help}${o.choices ? ` (one of: ${o.choices.join(', ')})` : ''}${sub.required?.includes(o.key) ? ' (required)' : ''}`];
  });
  const w = Math.max(...rows.map((r) => r[0].length)) + 2;
  return [
    `Usage: ptq debugger ${name} MODEL_OR_FILE CALIBRATION_DATA [options]`,
    '',
    sub.summary,
    '',
    '  MODEL_OR_FILE     the ***_calibrated_model.onnx (calibrate stage)',
    '  CALIBRATION_DATA  its calibration_data folder (<input_name>/<i>.npy, preprocess stage)',
    '',
    'Options:',
    ...rows.map(([a, b]) => `  ${a.padEnd(w)}${b}`),
    '',
    "Lists: [a,b] or a,b or several words after the flag; nested: [[a],[a,b]] (quote brackets for the shell: '[[a],[a,b]]').",
  ].join('\n');
}

function generalHelp(): string {
  const names = Object.keys(SUBCOMMANDS);
  const w = Math.max(...names.map((n) => n.length)) + 2;
  return [
    'Usage: ptq debugger <subcommand> MODEL_OR_FILE CALIBRATION_DATA [options]',
    '',
    'The accuracy debugger (hmct-debugger): find the nodes whose quantization costs accuracy.',
    '',
    'Subcommands:',
    ...names.map((n) => `  ${n.padEnd(w)}${SUBCOMMANDS[n].summary}`),
    '',
    'Metrics (a: float model, b: with quantized nodes; sums over all compared elements of all samples):',
    '  cosine-similarity  Σab / √(Σa²·Σb²)          mse        Σ(a−b)² / n',
    '  mre                Σ|a−b| / Σ|a|             sqnr       10·log10(Σa² / Σ(a−b)²) dB',
    '  chebyshev          max |a−b|',
    '',
    'ptq debugger <subcommand> --help shows its options; compiler/src/debug/README.md explains the results.',
  ].join('\n');
}

type Values = Record<string, string | number | boolean | string[] | (string | string[])[] | undefined>;

/** Parse a subcommand's arguments (see the file comment). */
export function parseDebuggerArgs(name: string, argv: readonly string[]): { positionals: string[]; values: Values } {
  const sub = SUBCOMMANDS[name];
  const err = (msg: string, fix = `see \`ptq debugger ${name} --help\``): PtqError => new PtqError('E_CLI_ARGS', `debugger ${name}: ${msg}`, { fix });
  const byFlag = new Map<string, Opt>();
  for (const o of sub.options) {
    byFlag.set(`--${o.long}`, o);
    byFlag.set(`--${o.long.replace(/_/g, '-')}`, o);
    if (o.short) byFlag.set(`-${o.short}`, o);
  }
  const positionals: string[] = [];
  const values: Values = {};
  const isFlag = (t: string | undefined): boolean => t !== undefined && /^--?[A-Za-z]/.test(t);
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i];
    if (!isFlag(tok)) {
      positionals.push(tok);
      continue;
    }
    const eq = tok.startsWith('--') ? tok.indexOf('=') : -1;
    const flag = eq > 0 ? tok.slice(0, eq) : tok;
    const o = byFlag.get(flag);
    if (!o) throw err(`unknown option '${flag}'`);
    const label = `${flag}`;
    if (o.kind === 'bool') {
      let v = eq > 0 ? tok.slice(eq + 1) : undefined;
      if (v === undefined && argv[i + 1] !== undefined && /^(true|false|1|0|yes|no)$/i.test(argv[i + 1])) v = argv[++i];
      if (v !== undefined && !/^(true|false|1|0|yes|no)$/i.test(v)) throw err(`${label} takes True or False (got '${v}')`);
      values[o.key] = v === undefined || /^(true|1|yes)$/i.test(v);
      continue;
    }
    let text: string;
    if (eq > 0) text = tok.slice(eq + 1);
    else {
      if (i + 1 >= argv.length || isFlag(argv[i + 1])) throw err(`${label} needs a value`);
      text = argv[++i];
    }
    // a bracketed value the shell split at blanks (`['weight', 'activation']`)
    while ((o.kind === 'list' || o.kind === 'nested') && unbalanced(text) && i + 1 < argv.length) text += ` ${argv[++i]}`;
    if (text.trim() === '') throw err(`${label} needs a value`);
    if (values[o.key] !== undefined && o.kind !== 'list' && o.kind !== 'nested') throw err(`${label} is given twice`);
    switch (o.kind) {
      case 'string':
        if (o.choices && !o.choices.includes(text)) throw err(`${label} must be one of ${o.choices.join(', ')} (got '${text}')`);
        values[o.key] = text;
        break;
      case 'int': {
        const n = Number(text);
        if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw err(`${label} takes an integer (got '${text}')`);
        values[o.key] = n;
        break;
      }
      case 'list':
      case 'nested': {
        const parse = (t: string): (string | string[])[] => (o.kind === 'nested' ? parseNodeList(t, label) : parseNameList(t, label));
        const items = [...((values[o.key] as (string | string[])[] | undefined) ?? []), ...parse(text)];
        // more words for the list once MODEL and DATA are known (argparse's nargs='+')
        while (positionals.length >= 2 && i + 1 < argv.length && !isFlag(argv[i + 1])) {
          let more = argv[++i];
          while (unbalanced(more) && i + 1 < argv.length) more += ` ${argv[++i]}`;
          items.push(...parse(more));
        }
        values[o.key] = items;
        break;
      }
    }
  }
  if (positionals.length < 2) throw err(`needs MODEL_OR_FILE and CALIBRATION_DATA (got ${positionals.length ? `only '${positionals[0]}'` : 'neither'})`, `e.g. ptq debugger ${name} model_output/x_calibrated_model.onnx model_output/calibration_data`);
  if (positionals.length > 2) throw err(`unexpected argument '${positionals[2]}'`);
  for (const k of sub.required ?? []) {
    if (values[k] === undefined) {
      const o = sub.options.find((x) => x.key === k) as Opt;
      throw err(`missing required option --${o.long}${o.short ? ` (-${o.short})` : ''}`);
    }
  }
  return { positionals, values };
}

export const command: Command = {
  summary: 'accuracy debugger on a calibrated model: node sensitivity, cumulative error, distributions, runall (hmct-debugger)',
  help: generalHelp,
  async run(argv, io: CliIO) {
    const [name, ...rest] = argv;
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      io.out(generalHelp());
      return 0;
    }
    const subName = name.replace(/_/g, '-');
    if (!SUBCOMMANDS[subName]) {
      throw new PtqError('E_CLI_COMMAND', `unknown debugger subcommand '${name}'`, { fix: `use one of: ${Object.keys(SUBCOMMANDS).join(', ')}` });
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(subHelp(subName));
      return 0;
    }
    const { positionals, values: v } = parseDebuggerArgs(subName, rest);
    const [model, data] = positionals;
    const dbg = await import('../../debug');
    const { processIO } = await import('../main');
    // progress: a bar on a terminal, lines on io.err otherwise
    const progress = io === processIO ? undefined : { write: (t: string) => t.split('\n').filter((l) => l.trim()).forEach((l) => io.err(l.replace(/^\r/, ''))), isTTY: false };
    const common = { progress, log: (l: string) => io.err(l), engine: v.engine as 'auto' | 'ort' | 'reference' | undefined };
    const saveDir = (v.saveDir as string | undefined) ?? '.';
    const path = await import('path');
    switch (subName) {
      case 'get-sensitivity-of-nodes': {
        const r = await dbg.getSensitivityOfNodes(model, data, {
          ...common,
          metrics: v.metrics as import('../../debug').MetricName[] | undefined,
          outputNode: v.outputNode as string | undefined,
          nodeType: v.nodeType as import('../../debug').NodeType | undefined,
          dataNum: v.dataNum as number | undefined,
          interestedNodes: v.interestedNodes as string[] | undefined,
          cacheMb: v.cacheMb as number | undefined,
          verbose: false,
        });
        if (v.verbose) io.out(dbg.formatSensitivityTable(r));
        else io.out(JSON.stringify(dbg.sensitivityDict(r), null, 2));
        return 0;
      }
      case 'plot-acc-error': {
        const { dir, result } = await dbg.plotAccError(saveDir, model, data, {
          ...common,
          quantizeNode: v.quantizeNode as import('../../debug').NodeSpec | undefined,
          nonQuantizeNode: v.nonQuantizeNode as import('../../debug').NodeSpec | undefined,
          metric: v.metric as import('../../debug').MetricName | undefined,
          averageMode: v.averageMode as boolean | undefined,
          dataNum: v.dataNum as number | undefined,
        });
        const last = result.nodes.length - 1;
        for (const c of result.curves) io.out(`${c.name} [${c.nodes.join(', ')}]: ${result.metric} at the last node '${result.nodes[last]}' = ${dbg.pyFloat(c.values[last])}`);
        io.out(`INFO wrote ${path.join(dir, 'accumulate_error.svg')} (+ .json, .csv)`);
        return 0;
      }
      case 'plot-distribution': {
        const { dir, result } = await dbg.plotDistribution(saveDir, model, data, v.nodesList as string[], { ...common, dataNum: v.dataNum as number | undefined });
        for (const n of result.nodes) io.out(`INFO wrote ${path.join(dir, `${n.file}.svg`)} (${n.type})`);
        return 0;
      }
      case 'get-channelwise-data-distribution': {
        const { dir, result } = await dbg.getChannelwiseDataDistribution(saveDir, model, data, v.nodesList as string[], {
          ...common,
          axis: v.axis as number | undefined,
          dataNum: v.dataNum as number | undefined,
        });
        for (const n of result.nodes) io.out(`INFO wrote ${path.join(dir, `${n.file}.svg`)} (${n.channels.length} channels along axis ${n.axis})`);
        return 0;
      }
      case 'runall': {
        const r = await dbg.runall(model, data, saveDir, {
          ...common,
          nsMetrics: v.nsMetrics as import('../../debug').MetricName[] | undefined,
          outputNode: v.outputNode as string | undefined,
          nodeType: v.nodeType as import('../../debug').NodeType | undefined,
          dataNum: v.dataNum as number | undefined,
          verbose: false,
          interestedNodes: v.interestedNodes as string[] | undefined,
          disNodesList: v.disNodesList as string[] | undefined,
          cwNodesList: v.cwNodesList as string[] | undefined,
          axis: v.axis as number | undefined,
          quantizeNode: v.quantizeNode as import('../../debug').NodeSpec | undefined,
          nonQuantizeNode: v.nonQuantizeNode as import('../../debug').NodeSpec | undefined,
          aeMetric: v.aeMetric as import('../../debug').MetricName | undefined,
          averageMode: v.averageMode as boolean | undefined,
          cacheMb: v.cacheMb as number | undefined,
        });
        if (v.verbose) for (const s of r.sensitivity) io.out(dbg.formatSensitivityTable(s));
        io.out(`INFO wrote ${path.join(r.dir, 'index.html')}`);
        return 0;
      }
    }
    return 1;
  },
};
