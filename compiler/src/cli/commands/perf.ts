import * as path from 'path';
import { PtqError } from '../../errors';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq perf [OPTIONS] BIN_FILE` (hb_perf): the static performance report of a `.bin` in
 * `hb_perf_result/<model>/` (HTML, JSON, SVG, PNG). A packed file: every model, or the one
 * `-m NAME` chooses. Each model's folder is replaced atomically; other folders are left alone.
 */
const OPTIONS: OptionSpec[] = [
  { name: 'model', alias: 'm', type: 'string', value: 'NAME', description: 'with a packed BIN_FILE, report only this model (default: every model)' },
  { name: 'pack', alias: 'p', type: 'boolean', description: 'accepted for hb_perf compatibility: packed files are recognised without it' },
  { name: 'output-dir', alias: 'o', type: 'string', value: 'DIR', default: 'hb_perf_result', description: 'where the model folders go' },
  { name: 'version', type: 'boolean', description: 'print the version and exit' },
];

export const command: Command = {
  summary: 'static performance report of a .bin model: HTML, JSON and structure picture (hb_perf)',
  help: () =>
    [
      'Usage: ptq perf [OPTIONS] BIN_FILE',
      '',
      'Writes hb_perf_result/<model>/ with <model>.html (Model Performance Summary, Details per BPU',
      'subgraph, BIN Model Structure, Layer Details when the model was compiled with debug: True),',
      '<model>.json, <model>.svg, <model>.png and one <subgraph>.html/.json per BPU subgraph.',
      'The latency is a static estimate of the BPU part; CPU operators are estimated separately.',
      'A packed BIN_FILE is reported model by model (all models unless -m names one).',
      '',
      'Options:',
      formatOptions(OPTIONS),
    ].join('\n'),
  async run(argv, io: CliIO) {
    const { options, positionals } = parseArgs(argv, OPTIONS, 'perf');
    if (options.version) {
      const { version } = await import('../main');
      io.out(version());
      return 0;
    }
    if (positionals.length !== 1) {
      throw new PtqError('E_CLI_ARGS', positionals.length ? `perf: one BIN_FILE expected, got ${positionals.length}` : 'perf: missing BIN_FILE', {
        fix: 'usage: ptq perf [-m NAME] model.bin',
      });
    }
    const file = positionals[0];
    const { readBinFile, selectModel } = await import('../../compile/bin-format');
    const { reportInputsFromBin } = await import('../../perf/report/from-bin');
    const { renderPerfReport, writeDirAtomic } = await import('../../perf/report');
    const bin = readBinFile(file);
    const name = options.model as string | undefined;
    const models = name !== undefined || !bin.packed ? [selectModel(bin, name, file)] : bin.models;
    if (bin.packed && name === undefined) io.out(`INFO '${file}' is a packed model with ${bin.models.length} models (${bin.models.map((m) => m.name).join(', ')}): reporting all of them (choose one with -m NAME)`);
    const outRoot = options['output-dir'] as string;
    // render everything first: a bad record in one model leaves every folder untouched
    const rendered = [];
    for (const m of models) {
      const { estimate, options: ro } = reportInputsFromBin(m, file);
      rendered.push({ m, estimate, report: await renderPerfReport(estimate, ro) });
    }
    const folders = new Set<string>();
    for (const { m, estimate, report } of rendered) {
      let folder = report.folder;
      for (let k = 2; folders.has(folder.toLowerCase()); k++) folder = `${report.folder}_${k}`;
      folders.add(folder.toLowerCase());
      const dir = path.join(outRoot, folder);
      writeDirAtomic(dir, report.files);
      for (const w of report.warnings) io.err(w);
      const t = estimate.totals;
      io.out(`INFO model '${m.name}': ${path.join(dir, `${report.folder}.html`)}`);
      io.out(`  Model Latency (ms): ${t.bpuMs.toFixed(3)}  (static estimate of the BPU part)`);
      io.out(`  Total DDR (loaded+stored) bytes per frame (MB per frame): ${t.ddrMBPerFrame.toFixed(3)}`);
      io.out(`  Loaded Bytes per Frame: ${t.loadedBytes}  Stored Bytes per Frame: ${t.storedBytes}`);
      for (const s of estimate.subgraphs) io.out(`  ${s.name}: ${s.ops} OPs per frame, ${(s.ddrBytes / 2 ** 20).toFixed(3)} MB DDR per frame, ${s.latencyMs.toFixed(3)} ms`);
    }
    return 0;
  },
};
