import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { lenetV1Net, mobilenetNet } from '../../scripts/fixtures/caffe';
import { encodeCaffemodel, writePrototxt } from '../../compiler/src/caffe/writer';
import { parseConfig } from '../../compiler/src/config';
import { GraphBuilder } from '../../compiler/src/onnx/builder';
import { encodeModel } from '../../compiler/src/onnx/encode';
import zooDefault, { findModels, zooGenerator } from './generator';
import { sourcePath } from '../lib/files';

let tree: Tree;
beforeEach(() => {
  tree = createTreeWithEmptyWorkspace();
});

function onnx(inputShape: number[], seed = 1): Buffer {
  const b = new GraphBuilder('net', { opset: 13, seed });
  b.output(b.relu(b.conv(b.input('input', 'float32', inputShape), { outChannels: 4, kernel: 3, pad: 1 })));
  return Buffer.from(encodeModel(b.build()));
}

function writeZoo(root: string): void {
  tree.write(`${root}/alpha.onnx`, onnx([1, 3, 16, 16]));
  tree.write(`${root}/beta.prototxt`, writePrototxt(mobilenetNet()));
  tree.write(`${root}/beta.caffemodel`, Buffer.from(encodeCaffemodel(mobilenetNet())));
  // a folder holding one model names it; its files need not share a name
  tree.write(`${root}/gamma/deploy.prototxt`, writePrototxt(lenetV1Net()));
  tree.write(`${root}/gamma/weights.caffemodel`, Buffer.from(encodeCaffemodel(lenetV1Net())));
  tree.write(`${root}/lonely.prototxt`, writePrototxt(mobilenetNet()));
  tree.write(`${root}/broken.onnx`, Buffer.from('this is not protobuf at all, really'));
  tree.write(`${root}/notes.txt`, 'ignored');
}

describe('zoo generator', () => {
  it('finds .onnx files, Caffe pairs by name and per folder, and reports unpaired files', () => {
    writeZoo('incoming');
    const { found, unpaired } = findModels(tree, sourcePath(tree, 'incoming'));
    expect(found.map((f) => [f.name, f.model.rel, f.caffeModel?.rel])).toEqual([
      ['alpha', 'incoming/alpha.onnx', undefined],
      ['beta', 'incoming/beta.prototxt', 'incoming/beta.caffemodel'],
      ['broken', 'incoming/broken.onnx', undefined],
      ['gamma', 'incoming/gamma/deploy.prototxt', 'incoming/gamma/weights.caffemodel'],
    ]);
    expect(unpaired).toEqual(['incoming/lonely.prototxt']);
  });

  it('imports every readable model as a project; unreadable and unpaired ones are skipped with the reason', () => {
    writeZoo('incoming');
    const r = zooGenerator(tree, { source: 'incoming', march: 'bayes', tags: 'zoo' });
    expect(r.imported.map((m) => m.configFile)).toEqual(['models/alpha/model.yaml', 'models/beta/model.yaml', 'models/gamma/model.yaml']);
    expect(r.skipped.map((s) => s.file)).toEqual(['incoming/lonely.prototxt', 'incoming/broken.onnx']);
    expect(r.skipped[0].reason).toBe('no .caffemodel to pair it with');
    expect(r.skipped[1].reason).toMatch(/broken\.onnx/);
    for (const m of r.imported) {
      const text = tree.read(m.configFile, 'utf8')!;
      const cfg = parseConfig(text, { file: m.configFile, dir: path.join(tree.root, m.projectDir) });
      expect(cfg.model.march).toBe('bayes');
      expect(text).toContain('nx-ptq:\n  tags: [zoo]');
    }
    expect(tree.exists('models/gamma/deploy.prototxt') && tree.exists('models/gamma/weights.caffemodel')).toBe(true);
    expect(tree.exists('models/broken')).toBe(false);
    expect(r.imported.find((m) => m.name === 'gamma')!.inputs[0]).toMatchObject({ shape: [1, 1, 28, 28], typeTrain: 'gray' });

    // a second import skips the existing projects; --overwrite replaces them
    expect(() => zooGenerator(tree, { source: 'incoming' })).toThrow(/no model of 'incoming' could be imported \(5 skipped; incoming\/alpha\.onnx: .*models\/alpha\/model\.yaml exists already/);
    const again = zooGenerator(tree, { source: 'incoming', overwrite: true });
    expect(again.imported).toHaveLength(3);
    expect(tree.read('models/alpha/model.yaml', 'utf8')).toContain("march: 'bernoulli2'");
  });

  it('two models with one name: the second is skipped, naming the first', () => {
    tree.write('z/x.onnx', onnx([1, 3, 8, 8]));
    tree.write('z/sub/x.onnx', onnx([1, 3, 8, 8], 2));
    tree.write('z/sub/y.onnx', onnx([1, 3, 8, 8], 3));
    const r = zooGenerator(tree, { source: 'z' });
    expect(r.imported.map((m) => m.name)).toEqual(['x', 'y']);
    expect(r.skipped).toEqual([{ file: 'z/sub/x.onnx', reason: "project name 'x' is taken by z/x.onnx (import it alone with the model generator and --name)" }]);
  });

  it('a folder from outside the workspace; shared options (calibration set) apply to every model', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-zoo-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.onnx'), onnx([1, 3, 8, 8]));
      fs.writeFileSync(path.join(dir, 'b.onnx'), onnx([1, 3, 8, 8], 5));
      for (let i = 0; i < 2; i++) tree.write(`calibration/c8/s${i}.bin`, Buffer.alloc(3 * 8 * 8, i));
      const r = zooGenerator(tree, { source: dir, calibrationSet: 'calibration/c8', directory: 'zoo' });
      expect(r.imported.map((m) => m.configFile)).toEqual(['zoo/a/model.yaml', 'zoo/b/model.yaml']);
      for (const m of r.imported) {
        expect(tree.read(m.configFile, 'utf8')).toContain("  cal_data_dir: '../../calibration/c8'\n");
        expect(tree.read(m.configFile, 'utf8')).toContain("  cal_data_type: 'uint8'\n");
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('user errors', () => {
    expect(() => zooGenerator(tree, { source: 'nowhere' })).toThrow(/--source 'nowhere' is not a folder/);
    tree.write('empty/readme.md', 'x');
    tree.write('empty/w.caffemodel', 'x');
    expect(() => zooGenerator(tree, { source: 'empty' })).toThrow(/--source 'empty' holds no models .*; unpaired: empty\/w\.caffemodel/);
    // through the Nx entry point the fix is part of the message
    expect(() => zooDefault(tree, { source: 'nowhere' })).toThrow(/^--source 'nowhere' is not a folder \(fix: pass the folder holding/);
  });
});
