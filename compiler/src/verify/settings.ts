import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, ConfigIssue, parseYaml, PtqConfig } from '../config';

/**
 * The verify stage's settings. The reference toolchain has no such keys, so they live in the
 * model's own top-level `nx-ptq:` block (which the config loader leaves to nx-ptq's tools):
 *
 *   nx-ptq:
 *     verify:
 *       cosine_threshold: 0.99      # an output whose cosine (float vs quantized) is lower fails
 *       samples: 10                 # how many samples of the set to run (all three models)
 *       data_dir: './verify_images' # instead of the calibration set: raw samples like
 *                                   # cal_data_dir (';'-separated, one folder per input)
 *
 * Everything is optional; a wrong value is an E_CONFIG error with the YAML line.
 */

export const DEFAULT_COSINE_THRESHOLD = 0.99;
export const DEFAULT_SAMPLES = 10;
const BLOCK = 'nx-ptq';
const GROUP = 'verify';
const KEYS = ['cosine_threshold', 'samples', 'data_dir'];

export interface VerifySettings {
  cosineThreshold: number;
  samples: number;
  /** absolute folders, one per model input (undefined: the calibration set) */
  dataDirs?: string[];
}

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The settings of `cfg`'s YAML (defaults when it has no `nx-ptq.verify` block or no file). */
export function readVerifySettings(cfg: PtqConfig): VerifySettings {
  const defaults: VerifySettings = { cosineThreshold: DEFAULT_COSINE_THRESHOLD, samples: DEFAULT_SAMPLES };
  const block = cfg.source.nxPtq;
  if (!isMapping(block) || block[GROUP] === undefined || block[GROUP] === null) return defaults;
  return parseVerifyBlock(block[GROUP], cfg.source.lines, cfg.source.file, cfg.source.dir);
}

/** Check the `nx-ptq.verify` mapping; `dir` resolves data_dir. */
export function parseVerifyBlock(value: unknown, lines: Record<string, number>, file: string | undefined, dir: string): VerifySettings {
  const out: VerifySettings = { cosineThreshold: DEFAULT_COSINE_THRESHOLD, samples: DEFAULT_SAMPLES };
  const issues: ConfigIssue[] = [];
  const issue = (key: string | undefined, message: string, fix?: string): void => {
    const line = (key && lines[`${BLOCK}.${GROUP}.${key}`]) || lines[`${BLOCK}.${GROUP}`] || lines[BLOCK];
    issues.push({ group: BLOCK, key: key ? `${GROUP}.${key}` : GROUP, line, message, fix });
  };
  if (!isMapping(value)) {
    issue(undefined, `must be a mapping (keys: ${KEYS.join(', ')})`, "write e.g. 'verify: { cosine_threshold: 0.99 }'");
    throw new ConfigError(file, issues);
  }
  for (const [key, v] of Object.entries(value)) {
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    switch (key) {
      case 'cosine_threshold':
        if (Number.isFinite(n) && n > -1 && n <= 1) out.cosineThreshold = n;
        else issue(key, `must be a number in (-1, 1], got ${JSON.stringify(v)}`, 'use e.g. 0.99 (the reference calls >= 0.99 normal)');
        break;
      case 'samples':
        if (Number.isInteger(n) && n >= 1) out.samples = n;
        else issue(key, `must be a whole number >= 1, got ${JSON.stringify(v)}`, 'use e.g. 10');
        break;
      case 'data_dir': {
        const list = typeof v === 'string' ? v.split(';').map((s) => s.trim()).filter(Boolean) : [];
        if (list.length) out.dataDirs = list.map((d) => path.resolve(dir, d));
        else issue(key, `must be a folder (one per input, ';'-separated), got ${JSON.stringify(v)}`, "write e.g. data_dir: './verify_data'");
        break;
      }
      default:
        issue(key, `unknown key; allowed keys: ${KEYS.join(', ')}`);
    }
  }
  if (issues.length) throw new ConfigError(file, issues);
  return out;
}
