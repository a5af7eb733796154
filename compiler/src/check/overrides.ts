import type { NodeInfo } from '../config/types';
import { PtqError } from '../errors';
import { Node } from '../onnx/ir';
import type { NodeInfoOverride, PlaceOptions } from './placement';

/**
 * The overrides placeModel takes, from the configuration's merged per-node view
 * (`PtqConfig.nodes`: run_on_cpu, run_on_bpu, node_info, set_node_data_type): ON becomes
 * run_on_cpu/run_on_bpu, data types become node_info entries.
 */
export function overridesFromConfig(nodes: Record<string, NodeInfo>): Pick<PlaceOptions, 'runOnCpu' | 'runOnBpu' | 'nodeInfo'> {
  const runOnCpu: string[] = [];
  const runOnBpu: string[] = [];
  const nodeInfo: Record<string, NodeInfoOverride> = {};
  for (const [name, n] of Object.entries(nodes)) {
    if (n.on === 'CPU') runOnCpu.push(name);
    else if (n.on === 'BPU') runOnBpu.push(name);
    const types: NodeInfoOverride = {};
    if (n.inputType) types.InputType = n.inputType;
    if (n.outputType) types.OutputType = n.outputType;
    for (const [i, t] of Object.entries(n.inputTypes ?? {})) types[`InputType${Number(i)}`] = t;
    if (Object.keys(types).length) nodeInfo[name] = types;
  }
  return { runOnCpu, runOnBpu, nodeInfo };
}

/** The per-node overrides by node name, checked against the model. */
export interface Overrides {
  cpu: Map<string, 'run_on_cpu' | 'node_info'>;
  bpu: Map<string, 'run_on_bpu' | 'node_info'>;
  info: Map<string, NodeInfoOverride>;
}

export function readOverrides(opts: PlaceOptions, live: Node[], folded: Node[], notes: string[]): Overrides {
  const names = new Set(live.map((n) => n.label));
  const foldedNames = new Set(folded.map((n) => n.label));
  const all = [...names, ...foldedNames];
  const known = (key: string, name: string): boolean => {
    if (names.has(name)) return true;
    if (foldedNames.has(name)) {
      notes.push(`${key} names '${name}', which only computes constants (folded at conversion); ignored`);
      return false;
    }
    const near = closest(name, all);
    throw new PtqError('E_NODE_NAME', `${key} names node '${name}', which is not in the model`, {
      subject: key,
      fix: near ? `did you mean '${near}'?` : 'use node names as the checker table lists them',
    });
  };
  const o: Overrides = { cpu: new Map(), bpu: new Map(), info: new Map() };
  for (const name of opts.runOnCpu ?? []) if (known('run_on_cpu', name)) o.cpu.set(name, 'run_on_cpu');
  for (const name of opts.runOnBpu ?? []) {
    if (!known('run_on_bpu', name)) continue;
    if (o.cpu.has(name)) {
      throw new PtqError('E_NODE_PLACEMENT', `node '${name}' is in both run_on_cpu and run_on_bpu`, { subject: 'run_on_bpu', fix: 'keep the node in one of the two lists' });
    }
    o.bpu.set(name, 'run_on_bpu');
  }
  const info = opts.nodeInfo ?? {};
  if (Object.keys(info).length && opts.march !== 'bayes') {
    throw new PtqError('E_NODE_INFO', `node_info is only supported for march bayes (RDK Ultra), not ${opts.march}`, {
      subject: 'node_info',
      fix: 'use run_on_cpu / run_on_bpu on bernoulli2, and remove node_info',
    });
  }
  for (const [name, entry] of Object.entries(info)) {
    validateNodeInfo(name, entry);
    if (!known('node_info', name)) continue;
    o.info.set(name, entry);
    if (entry.ON === 'CPU') {
      if (o.bpu.has(name)) throw conflict(name);
      o.cpu.set(name, 'node_info');
    } else if (entry.ON === 'BPU') {
      if (o.cpu.has(name)) throw conflict(name);
      o.bpu.set(name, 'node_info');
    }
  }
  return o;
}

function conflict(name: string): PtqError {
  return new PtqError('E_NODE_PLACEMENT', `node_info puts node '${name}' on one device and run_on_cpu/run_on_bpu on the other`, {
    subject: 'node_info',
    fix: 'place the node in one place only (node_info ON, or run_on_cpu/run_on_bpu)',
  });
}

function validateNodeInfo(name: string, entry: NodeInfoOverride): void {
  for (const [key, value] of Object.entries(entry)) {
    const bad = (want: string): PtqError =>
      new PtqError('E_NODE_INFO', `node_info '${name}': ${key} is '${String(value)}', expected ${want}`, { subject: 'node_info', fix: `set ${key} to ${want}` });
    if (key === 'ON') {
      if (value !== 'BPU' && value !== 'CPU') throw bad('BPU or CPU');
    } else if (key === 'InputType' || key === 'OutputType' || /^InputType\d+$/.test(key)) {
      if (value !== 'int8' && value !== 'int16') throw bad('int8 or int16');
    } else {
      throw new PtqError('E_NODE_INFO', `node_info '${name}': unknown key '${key}'`, { subject: 'node_info', fix: 'use ON, InputType, InputType<i> or OutputType' });
    }
  }
}

/** The most similar name (edit distance), when close enough to be a likely typo. */
function closest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
