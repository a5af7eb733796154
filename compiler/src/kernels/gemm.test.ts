import { cachedPacker, GemmBackend, gemmPacked, KC, MR, NR, packOperand, rowMajorSource, setGemmBackend, sgemm, stridedPacker } from './gemm';
import { Rng } from './random';
import { kernelModuleBytes, wasmKernels } from './wasm-simd';

const backends: GemmBackend[] = wasmKernels() ? ['wasm-simd', 'js'] : ['js'];
afterAll(() => setGemmBackend(backends[0]));

const rand = (rng: Rng, n: number): Float32Array => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));

/** C = alpha · op(A) · op(B) + beta · C by the definition, in doubles. */
function naive(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number, A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (tA ? A[k * lda + i] : A[i * lda + k]) * (tB ? B[j * ldb + k] : B[k * ldb + j]);
      out[i * N + j] = alpha * s + (beta ? beta * C[i * ldc + j] : 0);
    }
  }
  return out;
}

function worstError(got: Float32Array, gOff: number, ldg: number, want: Float64Array, M: number, N: number): number {
  let worst = 0;
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) worst = Math.max(worst, Math.abs(got[gOff + i * ldg + j] - want[i * N + j]) / (1 + Math.abs(want[i * N + j])));
  return worst;
}

describe('WebAssembly kernels', () => {
  it('encode a module that validates', () => {
    const wa = (globalThis as { WebAssembly?: { validate(b: Uint8Array): boolean } }).WebAssembly;
    if (!wa) return;
    expect(wa.validate(kernelModuleBytes())).toBe(true);
  });
});

describe.each(backends)('sgemm (%s)', (backend) => {
  beforeAll(() => setGemmBackend(backend));

  it('matches the definition on random sizes, transposes, alpha and beta', () => {
    const rng = new Rng(`sgemm-${backend}`);
    for (let t = 0; t < 120; t++) {
      const M = 1 + rng.int(t % 5 === 0 ? 150 : 40), N = 1 + rng.int(t % 7 === 0 ? 130 : 40), K = 1 + rng.int(t % 3 === 0 ? 400 : 60);
      const tA = rng.int(2) === 1, tB = rng.int(2) === 1;
      const lda = (tA ? M : K) + rng.int(3), ldb = (tB ? K : N) + rng.int(3), ldc = N + rng.int(3);
      const A = rand(rng, (tA ? K : M) * lda), B = rand(rng, (tB ? N : K) * ldb), C = rand(rng, M * ldc);
      const alpha = [1, 0.5, -2][rng.int(3)], beta = [0, 1, 0.25][rng.int(3)];
      const want = naive(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      sgemm(tA, tB, M, N, K, alpha, A, 0, lda, B, 0, ldb, beta, C, 0, ldc);
      const e = worstError(C, 0, ldc, want, M, N);
      if (!(e < 1e-5)) throw new Error(`case ${t}: ${M}x${N}x${K} tA ${tA} tB ${tB} alpha ${alpha} beta ${beta}: error ${e}`);
    }
  });

  it('blocks wide results (N beyond one C block) and deep ones (K beyond KC)', () => {
    const rng = new Rng('sgemm-blocks');
    for (const [M, N, K] of [[3, 4100, 5], [5, 9000, 2], [9, 17, 3 * KC + 5], [133, 11, KC + 1]]) {
      const A = rand(rng, M * K), B = rand(rng, K * N), C = new Float32Array(M * N);
      sgemm(false, false, M, N, K, 1, A, 0, K, B, 0, N, 0, C, 0, N);
      expect(worstError(C, 0, N, naive(false, false, M, N, K, 1, A, K, B, N, 0, C, N), M, N)).toBeLessThan(1e-5);
    }
  });

  it('adds row and column biases, with and without alpha', () => {
    const rng = new Rng('sgemm-bias');
    const M = 13, N = 21, K = 30;
    const A = rand(rng, M * K), B = rand(rng, K * N), rb = rand(rng, M + 2), cb = rand(rng, N);
    const base = naive(false, false, M, N, K, 1, A, K, B, N, 0, new Float32Array(0), 0);
    for (const alpha of [1, 0.5]) {
      for (const [useR, useC] of [[true, false], [false, true], [true, true]]) {
        const out = new Float32Array(M * N);
        gemmPacked(M, N, K, stridedPacker(MR, A, 0, K, 1), stridedPacker(NR, B, 0, 1, N), out, 0, N, { alpha, rowBias: useR ? rb : undefined, rowBiasOffset: 2, colBias: useC ? cb : undefined });
        const want = base.map((v, q) => alpha * v + (useR ? rb[2 + Math.floor(q / N)] : 0) + (useC ? cb[q % N] : 0));
        expect(worstError(out, 0, N, want, M, N)).toBeLessThan(1e-5);
      }
    }
  });

  it('reads a row-major B in place (odd and cache-unfriendly strides)', () => {
    const rng = new Rng('sgemm-rows');
    for (const [M, N, K, ld] of [[7, 64, 300, 64], [4, 9, 5, 13], [33, 1024, 20, 1024], [2, 3, 1, 3]]) {
      const A = rand(rng, M * K), B = rand(rng, 3 + K * ld), out = new Float32Array(M * N);
      gemmPacked(M, N, K, stridedPacker(MR, A, 0, K, 1), rowMajorSource(B, 3, ld, K, N), out, 0, N);
      expect(worstError(out, 0, N, naive(false, false, M, N, K, 1, A, K, B.subarray(3), ld, 0, out, N), M, N)).toBeLessThan(1e-5);
    }
  });

  it('returns bias only when K = 0', () => {
    const out = new Float32Array(6).fill(7);
    gemmPacked(2, 3, 0, stridedPacker(MR, new Float32Array(0), 0, 0, 1), stridedPacker(NR, new Float32Array(0), 0, 1, 3), out, 0, 3, { rowBias: Float32Array.from([1, 2]) });
    expect(Array.from(out)).toEqual([1, 1, 1, 2, 2, 2]);
  });
});

describe('cachedPacker', () => {
  it('packs a constant on its second use and repacks when the data changed', () => {
    const rng = new Rng('cache');
    const M = 9, K = 2 * KC + 3, N = 10;
    const owner = {};
    const A = rand(rng, M * K), B = rand(rng, K * N);
    const direct = stridedPacker(MR, A, 0, K, 1);
    expect(cachedPacker(owner, 'a', A, direct, MR, M, K)).toBe(direct);
    const second = cachedPacker(owner, 'a', A, direct, MR, M, K);
    expect(second).not.toBe(direct);
    const out = new Float32Array(M * N);
    gemmPacked(M, N, K, second, stridedPacker(NR, B, 0, 1, N), out, 0, N);
    expect(worstError(out, 0, N, naive(false, false, M, N, K, 1, A, K, B, N, 0, out, N), M, N)).toBeLessThan(1e-5);
    A[0] += 1;
    expect(cachedPacker(owner, 'a', A, direct, MR, M, K)).toBe(direct);
  });

  it('packOperand lays out zero-padded panels per depth block', () => {
    const A = Float32Array.from({ length: 6 * 3 }, (_, i) => i + 1); // 6 rows × 3
    const p = packOperand(stridedPacker(MR, A, 0, 3, 1), MR, 6, 3);
    expect(p.data.length).toBe(8 * 3);
    // panel 0: rows 0-3, k-major; panel 1: rows 4, 5 and two zero rows
    expect(Array.from(p.data.subarray(0, 4))).toEqual([1, 4, 7, 10]);
    expect(Array.from(p.data.subarray(12, 16))).toEqual([13, 16, 0, 0]);
  });
});
