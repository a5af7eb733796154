import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PtqError } from '../errors';
import { discoverModels, findWorkspaceRoot, projectName, resolveModels } from './models';

let root: string;
const write = (rel: string, text: string): void => {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
};
const oneLine = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as PtqError).oneLine();
  }
  return 'no error';
};

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-watch-models-'));
  write('nx.json', '{}');
  write('models/a/model.yaml', 'model_parameters: {}\n');
  write('models/b/model.yaml', 'nx-ptq: { name: bee }\nmodel_parameters: {}\n');
  write('models/broken/model.yaml', 'model_parameters: [\n');
  write('node_modules/x/model.yaml', '');
  write('.cache/model.yaml', '');
  write('zoo/c/model.yaml', '');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('watch: which models', () => {
  it('finds the workspace root and every model.yaml outside node_modules and dot folders', () => {
    expect(findWorkspaceRoot(path.join(root, 'models', 'a'))).toBe(root);
    expect(discoverModels(root).map((f) => path.relative(root, f))).toEqual(['models/a/model.yaml', 'models/b/model.yaml', 'models/broken/model.yaml', 'zoo/c/model.yaml']);
  });

  it('names projects as the Nx plugin does', () => {
    expect(projectName(path.join(root, 'models/a/model.yaml'))).toBe('a');
    expect(projectName(path.join(root, 'models/b/model.yaml'))).toBe('bee');
    expect(projectName(path.join(root, 'models/broken/model.yaml'))).toBe('broken');
  });

  it('takes files, folders and project names; all models by default', () => {
    const names = (args: string[], cwd = root): string[] => resolveModels(args, cwd, root).map((m) => m.name);
    expect(names([])).toEqual(['a', 'bee', 'broken', 'c']);
    expect(names(['bee', 'models/a', 'zoo/c/model.yaml'])).toEqual(['bee', 'a', 'c']);
    expect(names(['../b'], path.join(root, 'models', 'a'))).toEqual(['bee']);
    expect(oneLine(() => resolveModels(['nope'], root, root))).toBe(`ERROR no model file or project named 'nope' under ${root} (fix: use one of: a, bee, broken, c)`);
    expect(oneLine(() => resolveModels(['models'], root, root))).toBe("ERROR folder 'models' has no model.yaml (fix: name a model.yaml or a folder holding one)");
  });

  it('refuses two models with one name', () => {
    write('other/a/model.yaml', '');
    try {
      expect(oneLine(() => resolveModels([], root, root))).toMatch(/^ERROR two models are named 'a': models\/a\/model\.yaml and other\/a\/model\.yaml \(fix: name one of them/);
    } finally {
      fs.rmSync(path.join(root, 'other'), { recursive: true });
    }
  });
});
