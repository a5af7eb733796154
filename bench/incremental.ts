/**
 * Incremental builds of the example zoo through Nx, with the daemon off (as in CI):
 *
 *   node -r @swc-node/register bench/incremental.ts [--keep]
 *
 * In a temp copy of the repository (models/, calibration/, the toolchain sources and config
 * files copied; node_modules linked; its own empty Nx cache and stage memo):
 *  1. cold: `nx run-many -t <last stages>` over the whole zoo;
 *  2. no-op: the same again — every task should be a cache hit (target ≤ 3 s); once as is,
 *     once with NX_ISOLATE_PLUGINS=false (plugins loaded in Nx's process, no worker per plugin);
 *  3. one model's compiler_parameters edited (optimize_level) — only its compile, perf and
 *     verify should run;
 *  4. the same model's calibration_parameters edited (calibration_type → max, or
 *     max_percentile when it is max already) — its calibrate and everything after it.
 * For each: wall time, the tasks Nx ran and those it restored, and (NX_PTQ_STAGE_LOG) which
 * stages really computed and which the stage memo restored. The stages run as far as this
 * build implements them. The last line is all of it as JSON.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { implementedStages, StageName } from '../compiler/src/stages';
import { leafStages, withUpstream } from '../compiler/src/watch/affected';

const REPO = path.resolve(__dirname, '..');
const NX = path.join(REPO, 'node_modules', 'nx', 'dist', 'bin', 'nx.js');
const COPY = ['models', 'calibration', 'compiler', 'executors', 'plugins', 'nx.json', 'package.json', 'package-lock.json', 'tsconfig.base.json', '.gitignore'];
const SKIP = /(^|\/)(node_modules|model_output[^/]*|\.nx|\.nx-ptq|dist|coverage|tmp)(\/|$)/;

interface Phase {
  phase: string;
  seconds: number;
  /** CPU seconds of nx and the processes it waited for (Linux; tasks in processes nx does not reap are not counted) */
  cpuSeconds?: number;
  exit: number | null;
  tasks: number;
  ran: string[];
  fromCache: string[];
  failed: string[];
  /** stage log lines: `<stage> <model> computed|memo-hit|failed` */
  stages: string[];
}

function copyRepo(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nx-ptq-bench-incremental-'));
  for (const entry of COPY) {
    const src = path.join(REPO, entry);
    if (!fs.existsSync(src)) continue;
    fs.cpSync(src, path.join(dir, entry), { recursive: true, filter: (s) => !SKIP.test(path.relative(REPO, s).split(path.sep).join('/')) });
  }
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  if (fs.existsSync(path.join(REPO, 'compiler', 'node_modules'))) {
    fs.symlinkSync(path.join(REPO, 'compiler', 'node_modules'), path.join(dir, 'compiler', 'node_modules'), 'dir');
  }
  return dir;
}

/** Implemented stages whose module is present, each after the stages it needs. */
function runnableStages(): StageName[] {
  const present = (s: StageName): boolean => ['.ts', '.js'].some((e) => fs.existsSync(path.join(REPO, 'compiler', 'src', 'stages', `${s}${e}`)));
  const ok = implementedStages().filter(present);
  return ok.filter((s) => withUpstream([s]).every((u) => ok.includes(u)));
}

function run(ws: string, phase: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Phase {
  const stageLog = path.join(ws, `stages-${phase}.log`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NX_DAEMON: 'false',
    CI: 'true',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    FORCE_COLOR: '0',
    NX_CACHE_DIRECTORY: path.join(ws, '.nx-cache'),
    NX_PTQ_STAGE_LOG: stageLog,
    ...extraEnv,
  };
  for (const k of ['NX_SELF_HOSTED_REMOTE_CACHE_SERVER', 'NX_BATCH_MODE', 'NX_PTQ_STORE', 'NX_PTQ_NO_MEMO', 'JEST_WORKER_ID']) delete env[k];
  const cpu0 = childCpuSeconds();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [NX, ...args, '--output-style=static'], { cwd: ws, env, encoding: 'utf8', maxBuffer: 1 << 30 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu1 = childCpuSeconds();
  const cpuSeconds = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
  // eslint-disable-next-line no-control-regex
  const text = `${r.stdout}\n${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
  const ran = new Set<string>();
  const cached = new Set<string>();
  for (const m of text.matchAll(/^\s*>\s+nx run (\S+:\S+)(?:\s+\[([^\]]+)\])?\s*$/gm)) (m[2] ? cached : ran).add(m[1]);
  const failedAt = text.indexOf('Failed tasks:');
  const failed = failedAt < 0 ? [] : [...text.slice(failedAt).matchAll(/^\s*-\s+(\S+:\S+)\s*$/gm)].map((m) => m[1]);
  const stages = fs.existsSync(stageLog) ? fs.readFileSync(stageLog, 'utf8').split('\n').filter(Boolean) : [];
  if (r.status !== 0) fs.writeFileSync(path.join(ws, `nx-${phase}.log`), text);
  return { phase, seconds, cpuSeconds, exit: r.status, tasks: ran.size + cached.size, ran: [...ran].sort(), fromCache: [...cached].sort(), failed, stages };
}

/** User + system CPU time of the waited-for children of this process (/proc/self/stat; 100 ticks/s), or undefined. */
function childCpuSeconds(): number | undefined {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after the command: state is [0], so cutime (16th overall) is [13], cstime [14]
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return undefined;
  }
}

/** Replaces `key: value` inside `group:` of a model.yaml (the first occurrence after the group), or adds it. */
function setKey(file: string, group: string, key: string, value: string): string {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const g = lines.findIndex((l) => new RegExp(`^${group}\\s*:`).test(l));
  if (g < 0) throw new Error(`${file}: no ${group}`);
  let end = lines.findIndex((l, i) => i > g && /^\S/.test(l) && !l.startsWith('#'));
  if (end < 0) end = lines.length;
  const k = lines.findIndex((l, i) => i > g && i < end && new RegExp(`^\\s+${key}\\s*:`).test(l));
  const before = k >= 0 ? lines[k].trim() : `(no ${key})`;
  const line = `  ${key}: ${value}`;
  if (k >= 0) lines[k] = line;
  else lines.splice(g + 1, 0, line);
  fs.writeFileSync(file, lines.join('\n'));
  return `${group}.${before} → ${key}: ${value}`;
}

function valueOf(file: string, key: string): string | undefined {
  return new RegExp(`^\\s+${key}\\s*:\\s*['"]?([^'"\\s#]+)`, 'm').exec(fs.readFileSync(file, 'utf8'))?.[1];
}

function show(p: Phase, what = ''): void {
  const computed = p.stages.filter((l) => l.endsWith(' computed')).length;
  const memo = p.stages.filter((l) => l.endsWith(' memo-hit')).length;
  console.log(
    `${p.phase.padEnd(12)} ${p.seconds.toFixed(2).padStart(7)} s${p.cpuSeconds !== undefined ? ` (cpu ${p.cpuSeconds.toFixed(2)} s)` : ''}  exit ${p.exit}  tasks ${p.tasks}, ran ${p.ran.length}, from cache ${p.fromCache.length}` +
      ` (${p.tasks ? ((100 * p.fromCache.length) / p.tasks).toFixed(0) : 0} % hits); stages computed ${computed}, memo hits ${memo}${what ? `  [${what}]` : ''}`,
  );
  if (p.ran.length && p.ran.length <= 12) console.log(`${''.padEnd(12)} ran: ${p.ran.join(' ')}`);
  if (p.failed.length) console.log(`${''.padEnd(12)} FAILED: ${p.failed.join(' ')}`);
}

function main(): void {
  const keep = process.argv.includes('--keep');
  const stages = runnableStages();
  const targets = leafStages(stages);
  const ws = copyRepo();
  const models = fs.readdirSync(path.join(ws, 'models')).filter((m) => fs.existsSync(path.join(ws, 'models', m, 'model.yaml'))).sort();
  console.log(`bench/incremental: ${models.length} models (${models.join(', ')}), stages ${stages.join(' → ')}, nx run-many -t ${targets.join(',')}, NX_DAEMON=false, load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores, in ${ws}`);
  const args = ['run-many', '-t', targets.join(',')];
  const phases: Phase[] = [];
  try {
    const cold = run(ws, 'cold', args);
    show(cold);
    phases.push(cold);
    // later phases leave out the models that failed to build (their tasks are never cached)
    const broken = models.filter((m) => cold.failed.some((t) => t.startsWith(`${m}:`)));
    if (broken.length) {
      args.push(`--exclude=${broken.join(',')}`);
      console.log(`${''.padEnd(12)} (left out from here on: ${broken.join(', ')}; see nx-cold.log with --keep)`);
    }
    const noop = run(ws, 'no-op', args);
    show(noop);
    phases.push(noop);
    // the same with Nx's plugins loaded in its own process instead of one worker process each
    const noopInProcess = run(ws, 'no-op-inproc', args, { NX_ISOLATE_PLUGINS: 'false' });
    show(noopInProcess, 'NX_ISOLATE_PLUGINS=false');
    phases.push(noopInProcess);

    // one model that built: edit its compiler_parameters, then its calibration_parameters
    const model = models.find((m) => !broken.includes(m)) ?? models[0];
    const yaml = path.join(ws, 'models', model, 'model.yaml');
    const level = valueOf(yaml, 'optimize_level') ?? 'O3';
    const what1 = setKey(yaml, 'compiler_parameters', 'optimize_level', `'${level === 'O2' ? 'O3' : 'O2'}'`);
    const compiler = run(ws, 'compiler', args);
    show(compiler, `${model}: ${what1}`);
    phases.push(compiler);

    const calType = valueOf(yaml, 'calibration_type');
    const what2 =
      calType === 'max'
        ? setKey(yaml, 'calibration_parameters', 'max_percentile', valueOf(yaml, 'max_percentile') === '0.9999' ? '0.99995' : '0.9999')
        : setKey(yaml, 'calibration_parameters', 'calibration_type', "'max'");
    const calibration = run(ws, 'calibration', args);
    show(calibration, `${model}: ${what2}`);
    phases.push(calibration);

    const expected = (s: StageName[]): string[] => s.filter((x) => stages.includes(x)).map((x) => `${model}:${x}`).sort();
    const checks = {
      noop_all_cached: noop.ran.length === 0 && noop.fromCache.length === noop.tasks && noopInProcess.ran.length === 0,
      noop_within_3s: noop.seconds <= 3,
      noop_inproc_within_3s: noopInProcess.seconds <= 3,
      compiler_ran_only_compile_perf_verify: JSON.stringify(compiler.ran) === JSON.stringify(expected(['compile', 'perf', 'verify'])),
      calibration_ran_calibrate_and_after: JSON.stringify(calibration.ran) === JSON.stringify(expected(['calibrate', 'quantize', 'compile', 'perf', 'verify'])),
    };
    console.log(`checks: ${Object.entries(checks).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    console.log(JSON.stringify({ bench: 'incremental', models, stages, leftOut: broken, edited: model, phases: phases.map(({ stages: _s, ...p }) => p), checks }));
  } finally {
    if (keep) console.log(`kept ${ws}`);
    else fs.rmSync(ws, { recursive: true, force: true });
  }
}

main();
