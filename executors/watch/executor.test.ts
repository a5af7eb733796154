import { watchArgv } from './executor';

describe('watch executor', () => {
  it('turns its options into ptq watch flags (the YAML resolved against the workspace root)', () => {
    expect(watchArgv({ configFile: 'models/m1/model.yaml' }, '/ws')).toEqual(['watch', '/ws/models/m1/model.yaml']);
    expect(
      watchArgv({ configFile: '/abs/model.yaml', until: 'quantize', targets: ['compile=makertbin'], noNx: true, debounce: 50, noInitialBuild: true, verbose: true }, '/ws'),
    ).toEqual(['watch', '/abs/model.yaml', '--until=quantize', '--target=compile=makertbin', '--no-nx', '--debounce=50', '--no-initial-build', '--verbose']);
    expect(watchArgv({ configFile: 'm.yaml', until: ['check', 'quantize'] }, '/ws').slice(2)).toEqual(['--until=check', '--until=quantize']);
  });
});
