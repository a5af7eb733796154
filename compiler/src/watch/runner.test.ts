import * as path from 'path';
import { PtqError } from '../errors';
import { StageName, STAGE_NAMES } from '../stages';
import { parseNxOutput, resolveNx } from './runner';

const NAMES = Object.fromEntries(STAGE_NAMES.map((s) => [s, s])) as Record<StageName, string>;

// `nx run-many -t quantize --projects=m1,mbv2 --output-style=static` (Nx 22.7.9, trimmed): m1's
// calibration_type changed, mbv2 has a broken calibration sample.
const FAILED_RUN = `
 NX   Running target quantize for 2 projects and 6 tasks they depend on:

- m1
- mbv2



> nx run m1:preprocess  [local cache]

INFO wrote 2 calibration sample(s) for 'data' into /tmp/w/models/m1/model_output/calibration_data
> nx run mbv2:preprocess


> nx run mbv2:preprocess

ERROR calibration sample '/tmp/w/calibration/rgb_32/s9.bin' (input 'input') is 7 bytes; input_shape 1x3x32x32 of float32 needs 12288 bytes (fix: write each sample with numpy.tofile in input_shape and cal_data_type)
> nx run m1:check  [local cache]

input 'data': rgb <- rgb, input RGB_128 int8 NCHW; HzPreprocess: ((x+128) - mean) * scale (2 nodes)
> nx run mbv2:check


> nx run mbv2:check

input 'input': rgb <- nv12, input yuv444_128 int8 NCHW (4 nodes)
> nx run m1:calibrate


> nx run m1:calibrate

INFO calibration_type kl: 2 sample(s), 2 tensor(s), engine ort
> nx run m1:quantize


> nx run m1:quantize

Relu_0  0.999577           0.001859     0.002824     0.010646

calibration data: 0/5 (0%)

 NX   Running target quantize for 2 projects and 6 tasks they depend on failed

Tasks not run because their dependencies failed or --nx-bail=true:

- mbv2:quantize
- mbv2:calibrate

Failed tasks:

- mbv2:preprocess

`;

const CACHED_RUN = `
 NX   Running target quantize for project m1 and 3 tasks it depends on:

> nx run m1:preprocess  [local cache]

> nx run m1:check  [existing outputs match the cache, left as is]

> nx run m1:calibrate  [remote cache]

> nx run m1:quantize  [local cache]


 NX   Successfully ran target quantize for project m1 and 3 tasks it depends on

Nx read the output from the cache instead of running the command for 4 out of 4 tasks.
`;

describe('parseNxOutput', () => {
  it('splits tasks per project into ran, restored and failed, with the failed task’s ERROR line', () => {
    const r = parseNxOutput(FAILED_RUN, NAMES);
    expect(r.get('m1')).toEqual({ ran: ['calibrate', 'quantize'], cached: ['preprocess', 'check'], failed: [], errors: new Map() });
    const mbv2 = r.get('mbv2')!;
    expect(mbv2.failed).toEqual(['preprocess']);
    expect(mbv2.ran).toEqual(['check']);
    expect(mbv2.errors.get('preprocess')).toMatch(/^ERROR calibration sample '.*s9\.bin' \(input 'input'\) is 7 bytes; .*\(fix: write each sample/);
  });

  it('counts every kind of cache restore as cached', () => {
    expect(parseNxOutput(CACHED_RUN, NAMES).get('m1')).toMatchObject({ ran: [], cached: ['preprocess', 'check', 'calibrate', 'quantize'] });
  });

  it('follows renamed targets and ignores targets that are not stages', () => {
    const names = { ...NAMES, check: 'ptq-check' };
    const text = '> nx run m1:ptq-check\n\nok\n> nx run m1:lint\n> nx run m1:preprocess  [local cache]\n';
    expect(parseNxOutput(text, names).get('m1')).toMatchObject({ ran: ['check'], cached: ['preprocess'] });
  });
});

describe('resolveNx', () => {
  it("finds the workspace's nx CLI, or says how to get one", () => {
    const repo = path.resolve(__dirname, '..', '..', '..');
    expect(resolveNx(repo)).toBe(path.join(repo, 'node_modules', 'nx', 'dist', 'bin', 'nx.js'));
    let line = '';
    try {
      resolveNx('/');
    } catch (e) {
      line = (e as PtqError).oneLine();
    }
    expect(line).toBe('ERROR nx is not installed in / (fix: run `npm install` in the workspace, or pass --no-nx to run the stages without Nx)');
  });
});
