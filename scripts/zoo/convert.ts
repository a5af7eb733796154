import * as fs from 'fs';
import * as path from 'path';
import { isPtqError } from '../../compiler/src/errors';
import { implementedStages, runStage, StageName, STAGE_NAMES } from '../../compiler/src/stages';

/**
 * Converts zoo projects stage by stage and prints how long each stage took:
 *   node -r @swc-node/register scripts/zoo/convert.ts [--to STAGE] [--quiet] [project...]
 * Default: every models/<project>/model.yaml, stages preprocess … quantize (or --to STAGE;
 * stages this build does not implement are reported as such). One JSON line per project:
 * {"project", "seconds": {stage: s}, "error"?}. Exit code 1 when a project failed.
 */
const REPO_ROOT = path.resolve(__dirname, '..', '..');

async function main(argv: string[]): Promise<number> {
  let to: StageName = 'quantize';
  let quiet = false;
  const projects: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--to') to = argv[++i] as StageName;
    else if (a === '--quiet') quiet = true;
    else if (a.startsWith('-')) {
      console.error(`usage: convert.ts [--to ${STAGE_NAMES.join('|')}] [--quiet] [project...]`);
      return 2;
    } else projects.push(a);
  }
  if (!STAGE_NAMES.includes(to)) {
    console.error(`ERROR unknown stage '${to}' (stages: ${STAGE_NAMES.join(', ')})`);
    return 2;
  }
  const modelsDir = path.join(REPO_ROOT, 'models');
  const all = fs.readdirSync(modelsDir).filter((p) => fs.existsSync(path.join(modelsDir, p, 'model.yaml'))).sort();
  const stages = STAGE_NAMES.slice(0, STAGE_NAMES.indexOf(to) + 1);
  const available = new Set(implementedStages());
  let failed = 0;
  for (const project of projects.length ? projects : all) {
    const configFile = path.join(modelsDir, project, 'model.yaml');
    const seconds: Partial<Record<StageName, number>> = {};
    let error: string | undefined;
    for (const stage of stages) {
      if (!available.has(stage)) {
        error = `${stage}: not implemented in this build`;
        break;
      }
      const t0 = process.hrtime.bigint();
      try {
        await runStage(stage, { configFile, log: quiet ? () => undefined : (line) => process.stderr.write(`[${project}] ${line}\n`) });
      } catch (e) {
        error = `${stage}: ${isPtqError(e) ? `${e.code} ${e.message}${e.fix ? ` (fix: ${e.fix})` : ''}` : (e as Error).stack}`;
        break;
      } finally {
        seconds[stage] = Math.round(Number(process.hrtime.bigint() - t0) / 1e6) / 1000;
      }
    }
    if (error) failed++;
    console.log(JSON.stringify({ project, seconds, ...(error ? { error } : {}) }));
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`ERROR ${(e as Error).message}`);
    process.exitCode = 2;
  },
);
