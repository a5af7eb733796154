/**
 * Table-driven: each malformed configuration must fail with one PtqError (code E_CONFIG)
 * whose single-line message names the key and, where the key or group is in the file, the line.
 */
import { isPtqError } from '../errors';
import { ConfigError } from './issues';
import { parseConfig } from './load';
import { validateAgainstModel } from './rules';
import { base, Case, cases, render } from './malformed-cases.test.util';

function run(c: Case): { error: unknown; lines: Record<string, number> } {
  let text: string;
  let lines: Record<string, number> = {};
  if (c.text !== undefined) text = c.text;
  else {
    const d = base();
    c.edit?.(d);
    ({ text, lines } = render(d));
  }
  try {
    const cfg = parseConfig(text, { file: 'model.yaml', dir: '/tmp/cfg', modelType: c.modelType });
    if (c.model) validateAgainstModel(cfg, c.model);
  } catch (error) {
    return { error, lines };
  }
  return { error: undefined, lines };
}

describe('malformed configurations', () => {
  it('has at least 100 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it('the base configuration is valid (so each case tests its own edit)', () => {
    expect(run({ name: 'base', key: '', line: null }).error).toBeUndefined();
    expect(run({ name: 'base', key: '', line: null, model: [{ name: 'data', shape: [1, 3, 224, 224] }] }).error).toBeUndefined();
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { error, lines } = run(c);
    expect(error).toBeDefined();
    if (!isPtqError(error)) throw error;
    expect(error.code).toBe('E_CONFIG');
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toHaveLength(c.count ?? 1);
    const message = error.message;
    expect(message).not.toMatch(/\n/);
    expect(error.oneLine()).not.toMatch(/\n/);
    expect(message).toContain(c.key);
    if (c.line === null) expect(message).toMatch(/^model\.yaml: /);
    else {
      const line = typeof c.line === 'number' ? c.line : (lines[c.line] ?? lines[c.line.split('.')[0]]);
      expect(line).toBeDefined();
      expect(message.startsWith(`model.yaml:${line} `)).toBe(true);
    }
  });
});
