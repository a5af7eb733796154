import * as path from 'path';
import type { BinFile, BinModel } from '../compile/bin-format';
import { PtqConfig } from '../config';
import type { HostProfile } from '../perf/report';
import { readStageFile } from './artifacts';
import { StageFn, StageResult, stageOutputPaths } from './index';

/**
 * The perf stage (hb_perf): reads `<working_dir>/<prefix>.bin` and writes
 * `hb_perf_result/<model>/` for every model in it — the static BPU estimate the compile stage
 * recorded, drawn as HTML/JSON/SVG/PNG — plus, when the host runtime can profile the model, its
 * measured time in the same JSON, labelled "host simulator (not BPU)". The whole
 * `hb_perf_result` folder is replaced atomically (no stale model folders survive).
 */

/** Measures a model of a `.bin` on the host runtime; undefined when it cannot. */
export type HostProfiler = (bin: BinFile, model: BinModel, binFile: string) => Promise<HostProfile | undefined>;

export interface PerfStageDeps {
  hostProfiler?: HostProfiler;
}

/** The perf stage with its host profiler injected (tests; the default has none until the runtime provides one). */
export function perfStageWith(deps: PerfStageDeps): StageFn {
  return async (cfg, ctx) => runPerf(cfg, ctx.log, deps);
}

/**
 * The perf target: the static BPU estimate recorded in the `.bin`, plus the host runtime's
 * measured profile (20 frames, 1 thread) in the report's `hostSimulator` section — labelled
 * as simulator wall time, the one part of the report that differs between runs.
 */
export const perfStage: StageFn = perfStageWith({
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the runtime loads only when the stage runs
  hostProfiler: (bin, model, file) => (require('../runtime/bin-perf') as typeof import('../runtime/bin-perf')).binHostProfiler({ frames: 20, threads: 1 })(bin, model, file),
});

async function runPerf(cfg: PtqConfig, log: (line: string) => void, deps: PerfStageDeps): Promise<StageResult> {
  const { decodeBin } = await import('../compile/bin-format');
  const { reportInputsFromBin } = await import('../perf/report/from-bin');
  const { renderPerfReport, writeDirAtomic } = await import('../perf/report');
  const binFile = stageOutputPaths('compile', cfg)[0];
  const bin = decodeBin(readStageFile(cfg, 'compile', binFile), binFile);
  const [outDir] = stageOutputPaths('perf', cfg);
  const lines: string[] = [];
  const say = (line: string): void => {
    lines.push(line);
    log(line);
  };
  const files: [string, string | Uint8Array][] = [];
  const folders = new Set<string>();
  for (const m of bin.models) {
    const host = deps.hostProfiler ? await deps.hostProfiler(bin, m, binFile) : undefined;
    // the file's name, not its absolute path: the report does not depend on where working_dir is
    const { estimate, options } = reportInputsFromBin(m, path.basename(binFile), host);
    const r = await renderPerfReport(estimate, options);
    let folder = r.folder;
    for (let k = 2; folders.has(folder.toLowerCase()); k++) folder = `${r.folder}_${k}`;
    folders.add(folder.toLowerCase());
    for (const [rel, data] of r.files) files.push([`${folder}/${rel}`, data]);
    for (const w of r.warnings) say(w);
    const t = estimate.totals;
    say(
      `INFO perf: model '${m.name}': Model Latency ${t.bpuMs.toFixed(3)} ms (static BPU estimate), ${t.ddrMBPerFrame.toFixed(3)} MB DDR per frame, ` +
        `${estimate.subgraphs.length} BPU subgraph(s)${host ? `; host simulator ${host.averageMs.toFixed(3)} ms per frame (not BPU)` : ''}`,
    );
  }
  writeDirAtomic(outDir, files);
  say(`INFO perf: report written to ${outDir}`);
  return { stage: 'perf', outputs: files.map(([rel]) => path.join(outDir, ...rel.split('/'))), lines };
}
