/**
 * Every malformed configuration of the config table, through the real command line entry
 * (`ptq makertbin --config …`, in process): exit code 2, exactly one `ERROR …` line naming the
 * key, no stack trace, nothing written into working_dir.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../src/cli/main';
import { base, cases, render } from '../../src/config/malformed-cases.test.util';
import { GraphBuilder } from '../../src/onnx/builder';
import { saveModel } from '../../src/onnx/encode';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-config-errors-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A model with the given inputs (each → Relu → an output), for cases checked against a model. */
function writeModel(inputs: { name: string; shape: readonly (number | string)[] }[]): void {
  const b = new GraphBuilder('m', { opset: 13 });
  for (const inp of inputs) b.output(b.relu(b.input(inp.name, 'float32', [...inp.shape])), `${inp.name}_out`);
  saveModel(b.build(), path.join(dir, 'model.onnx'));
}

async function runCli(text: string, modelType?: string): Promise<{ code: number; out: string[]; err: string[] }> {
  const file = path.join(dir, 'model.yaml');
  fs.writeFileSync(file, text);
  const out: string[] = [];
  const err: string[] = [];
  const argv = ['makertbin', '--config', file, ...(modelType ? ['--model-type', modelType] : [])];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('ptq makertbin on malformed configurations', () => {
  it('covers at least 100 cases', () => expect(cases.length).toBeGreaterThanOrEqual(100));

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    writeModel(c.model ?? [{ name: 'data', shape: [1, 3, 224, 224] }]);
    let text: string;
    if (c.text !== undefined) text = c.text;
    else {
      const d = base();
      c.edit?.(d);
      text = render(d).text;
    }
    const { code, err } = await runCli(text, c.modelType);
    expect(code).toBe(2);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^ERROR /);
    expect(err[0]).toContain(c.key);
    expect(err[0]).not.toMatch(/\n|\s+at \S+ \(/);
    expect(fs.existsSync(path.join(dir, 'model_output'))).toBe(false);
  });
});
