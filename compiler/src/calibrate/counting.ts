/**
 * The histogram counting of calibration, as ONE self-contained function (countingCore): no
 * imports, no names from outside it. calibrate/observers.ts uses it in this thread; the one-pass
 * collection (calibrate/sampled.ts) also evaluates its source in a worker thread, which counts a
 * sample's values on the other core while onnxruntime computes the next sample — the same code
 * either way, so the counts are the same.
 */

/** What a growing histogram holds (see GrowingHistogram in observers.ts), as the core hands it out. */
export interface GrowingState {
  fineBins: number;
  /** log2 of the range; null while only zeros were seen */
  exponent: number | null;
  /** counts per fine bin (lanes added up) */
  fine: Float64Array;
  /** zeros seen while no range existed yet (they belong to bin 0) */
  onlyZeros: number;
  /** elements exactly 0 (in `fine[0]` or `onlyZeros`) */
  zeros: number;
  /** NaN/±Infinity elements skipped */
  nonFinite: number;
}

export interface GrowingCounter {
  /** Fold in values whose largest |x| is at most `absmax` (see GrowingHistogram.observe). */
  observe(data: Float32Array | Float64Array, absmax: number): void;
  state(): GrowingState;
}

export interface CountingCore {
  /**
   * Count |data[from..to)| into `hist` (equal bins starting at 0; `binsPerUnit` = bins / range).
   * Values beyond the range go to the last bin. Adds to `tally[0]` the elements that were not
   * finite (skipped) and to `tally[1]` those exactly 0 (counted in bin 0 too).
   *
   * `hist` holds `lanes` equal histograms side by side (length lanes × bins; lanes 1 or 4), which
   * the caller adds up: element i goes to lane i mod lanes. Four lanes let consecutive elements
   * that fall in the same bin (a run of zeros after a ReLU) increment different counters, so the
   * loop does not wait for the previous increment (2.5–4× faster than one lane).
   */
  accumulateHistogram(data: Float32Array | Float64Array, from: number, to: number, hist: Float64Array | Uint32Array, binsPerUnit: number, tally: Float64Array, lanes?: 1 | 4): void;
  /** A histogram whose power-of-two range grows with the data (GrowingHistogram's counting). */
  growing(fineBins: number, lanes: 1 | 4): GrowingCounter;
}

/**
 * The counting kernels. Self-contained (its source is evaluated again in a worker): plain
 * JavaScript once the types are erased, nothing from outside the function.
 */
export function countingCore(): CountingCore {
  // bound once: global lookups are slow inside vm contexts (jest runs tests in one)
  const abs = Math.abs;
  const floor = Math.floor;

  function accumulateHistogram(data: Float32Array | Float64Array, from: number, to: number, hist: Float64Array | Uint32Array, binsPerUnit: number, tally: Float64Array, lanes: 1 | 4 = 1): void {
    const bins = hist.length / lanes;
    if (lanes === 4 && data instanceof Float32Array) {
      histogramF32x4(data, from, to, hist, bins, binsPerUnit, tally);
      return;
    }
    const last = bins - 1;
    let skipped = 0;
    let zeros = 0;
    for (let i = from; i < to; i++) {
      const v = data[i];
      if (v - v !== 0) {
        skipped++;
        continue;
      }
      if (v === 0) zeros++;
      const k = floor(abs(v) * binsPerUnit);
      hist[(i % lanes) * bins + (k < last ? k : last)]++;
    }
    tally[0] += skipped;
    tally[1] += zeros;
  }

  /**
   * The four-lane float32 kernel, without data-dependent branches: zeros and non-finite values
   * are counted from the bit patterns (|bits| = 0: ±0; exponent all ones: NaN/±Infinity);
   * non-finite values land in the last bin (NaN < last is false) and are taken out of it after.
   */
  function histogramF32x4(data: Float32Array, from: number, to: number, hist: Float64Array | Uint32Array, bins: number, binsPerUnit: number, tally: Float64Array): void {
    const bits = new Int32Array(data.buffer, data.byteOffset, data.length);
    const last = bins - 1;
    const l1 = bins;
    const l2 = 2 * bins;
    const l3 = 3 * bins;
    let zeros = 0;
    let special = 0;
    // the lane of element i is i mod 4 (as in the generic loop), whatever `from` is
    let i = from;
    for (; i < to && (i & 3) !== 0; i++) {
      const b = bits[i] & 0x7fffffff;
      zeros += (b - 1) >>> 31;
      special += ((b + 0x00800000) | 0) >>> 31;
      const x = abs(data[i]) * binsPerUnit;
      hist[(i & 3) * bins + (x < last ? x | 0 : last)]++;
    }
    for (; i + 3 < to; i += 4) {
      const b0 = bits[i] & 0x7fffffff;
      const b1 = bits[i + 1] & 0x7fffffff;
      const b2 = bits[i + 2] & 0x7fffffff;
      const b3 = bits[i + 3] & 0x7fffffff;
      zeros += ((b0 - 1) >>> 31) + ((b1 - 1) >>> 31) + ((b2 - 1) >>> 31) + ((b3 - 1) >>> 31);
      special += (((b0 + 0x00800000) | 0) >>> 31) + (((b1 + 0x00800000) | 0) >>> 31) + (((b2 + 0x00800000) | 0) >>> 31) + (((b3 + 0x00800000) | 0) >>> 31);
      const x0 = abs(data[i]) * binsPerUnit;
      const x1 = abs(data[i + 1]) * binsPerUnit;
      const x2 = abs(data[i + 2]) * binsPerUnit;
      const x3 = abs(data[i + 3]) * binsPerUnit;
      hist[x0 < last ? x0 | 0 : last]++;
      hist[l1 + (x1 < last ? x1 | 0 : last)]++;
      hist[l2 + (x2 < last ? x2 | 0 : last)]++;
      hist[l3 + (x3 < last ? x3 | 0 : last)]++;
    }
    for (; i < to; i++) {
      const b = bits[i] & 0x7fffffff;
      zeros += (b - 1) >>> 31;
      special += ((b + 0x00800000) | 0) >>> 31;
      const x = abs(data[i]) * binsPerUnit;
      hist[(i & 3) * bins + (x < last ? x | 0 : last)]++;
    }
    if (special > 0) {
      // take the non-finite elements back out of the last bins of their lanes
      for (let j = from; j < to; j++) {
        const v = data[j];
        if (v - v !== 0) hist[(j & 3) * bins + last]--;
      }
    }
    tally[0] += special;
    tally[1] += zeros;
  }

  /** In place, the histogram of twice the range: bin k = bins 2k and 2k+1, upper half empty. */
  function mergePairs(h: Uint32Array | Float64Array): void {
    const half = h.length / 2;
    for (let k = 0; k < half; k++) h[k] = h[2 * k] + h[2 * k + 1];
    h.fill(0, half);
  }

  function growing(fineBins: number, lanes: 1 | 4): GrowingCounter {
    // counts since the last flush, `lanes` histograms side by side (Uint32: the tables of the
    // many tensors of one pass stay small), flushed before a count could overflow
    const counts = new Uint32Array(lanes * fineBins);
    let flushed: Float64Array | null = null;
    let pending = 0;
    let exponent: number | null = null;
    let onlyZeros = 0;
    const tally = new Float64Array(2);

    const fine = (): Float64Array => {
      const f = flushed ? Float64Array.from(flushed) : new Float64Array(fineBins);
      for (let lane = 0; lane < lanes; lane++) for (let k = 0; k < fineBins; k++) f[k] += counts[lane * fineBins + k];
      return f;
    };
    const grow = (absmax: number): void => {
      let e = Math.ceil(Math.log2(absmax));
      while (2 ** e < absmax) e++;
      while (2 ** (e - 1) >= absmax) e--;
      if (exponent === null) {
        exponent = e;
        return;
      }
      for (; exponent < e; exponent++) {
        for (let lane = 0; lane < lanes; lane++) mergePairs(counts.subarray(lane * fineBins, (lane + 1) * fineBins));
        if (flushed) mergePairs(flushed);
      }
    };
    return {
      observe(data, absmax) {
        if (!(absmax >= 0) || absmax === Infinity) throw new Error(`GrowingHistogram: absmax must be finite and >= 0, got ${absmax}`);
        if (pending + data.length >= 0xffffffff) {
          flushed = fine();
          counts.fill(0);
          pending = 0;
        }
        pending += data.length;
        if (absmax === 0 && exponent === null) {
          // nothing but zeros (and maybe non-finite values) so far: no range to count into yet
          let special = 0;
          for (let i = 0; i < data.length; i++) if (data[i] - data[i] !== 0) special++;
          tally[0] += special;
          tally[1] += data.length - special;
          onlyZeros += data.length - special;
          return;
        }
        if (absmax > 0) grow(absmax);
        accumulateHistogram(data, 0, data.length, counts, fineBins / 2 ** (exponent as number), tally, lanes);
      },
      state: () => ({ fineBins, exponent, fine: fine(), onlyZeros, zeros: tally[1], nonFinite: tally[0] }),
    };
  }

  return { accumulateHistogram, growing };
}

// ---------------------------------------------------------------- where the counting runs

/** One site's values of one sample and the absmax to count them with (GrowingCounter.observe). */
export interface SinkItem {
  site: number;
  data: Float32Array | Float64Array;
  absmax: number;
}

/**
 * Counts the values of the one-pass collection into one growing histogram per site, in order,
 * in a worker thread (`worker`: true) or in this thread.
 */
export interface HistogramSink {
  readonly worker: boolean;
  /** Queue one sample's values (the data is copied or counted before this returns; the promise waits while the worker is 2 samples behind). */
  add(items: SinkItem[]): Promise<void>;
  /** Every site's histogram, once everything queued is counted. */
  finish(): Promise<GrowingState[]>;
  /** Stop the worker (idempotent). */
  close(): Promise<void>;
}

export interface SinkSite {
  fineBins: number;
  lanes: 1 | 4;
}

/** Samples the worker may be behind before `add` waits: bounds the values held in messages. */
const IN_FLIGHT = 2;

/**
 * A sink for `sites`: a worker thread evaluating countingCore's source, or this thread when a
 * worker cannot start (NX_PTQ_COUNT_INLINE=1 asks for this thread).
 */
export async function openHistogramSink(sites: SinkSite[]): Promise<HistogramSink> {
  if (process.env.NX_PTQ_COUNT_INLINE !== '1') {
    const w = await startWorker(sites);
    if (w) return w;
  }
  const core = countingCore();
  const counters = sites.map((s) => core.growing(s.fineBins, s.lanes));
  return {
    worker: false,
    async add(items) {
      for (const it of items) counters[it.site].observe(it.data, it.absmax);
    },
    finish: async () => counters.map((c) => c.state()),
    close: async () => undefined,
  };
}

type FromWorker = { type: 'ready' } | { type: 'ack' } | { type: 'states'; states: GrowingState[] } | { type: 'error'; message: string };

const WORKER_MAIN = `
const { parentPort } = require('worker_threads');
const core = (CORE)();
let counters = [];
parentPort.on('message', (m) => {
  try {
    if (m.type === 'sites') counters = m.sites.map((s) => core.growing(s.fineBins, s.lanes));
    else if (m.type === 'sample') {
      for (const it of m.items) counters[it.site].observe(it.data, it.absmax);
      parentPort.postMessage({ type: 'ack' });
    } else if (m.type === 'finish') parentPort.postMessage({ type: 'states', states: counters.map((c) => c.state()) });
  } catch (e) {
    parentPort.postMessage({ type: 'error', message: String((e && e.message) || e) });
  }
});
parentPort.postMessage({ type: 'ready' });
`;

/** The worker sink; undefined when the worker does not come up (the caller counts in this thread). */
async function startWorker(sites: SinkSite[]): Promise<HistogramSink | undefined> {
  let worker: import('worker_threads').Worker;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Worker } = require('worker_threads') as typeof import('worker_threads');
    // execArgv: none of the parent's loaders (a TypeScript register hook costs ~0.4 s to start; the source is plain JS)
    worker = new Worker(WORKER_MAIN.replace('CORE', countingCore.toString()), { eval: true, execArgv: [] });
  } catch {
    return undefined;
  }
  let failure: Error | undefined;
  const waiting: { type: FromWorker['type']; resolve: (m: FromWorker) => void; reject: (e: Error) => void }[] = [];
  const fail = (e: Error): void => {
    failure ??= e;
    for (const w of waiting.splice(0)) w.reject(failure);
  };
  worker.on('message', (m: FromWorker) => {
    if (m.type === 'error') return fail(new Error(`calibration counting worker: ${m.message}`));
    const i = waiting.findIndex((w) => w.type === m.type);
    if (i >= 0) waiting.splice(i, 1)[0].resolve(m);
  });
  worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
  worker.on('exit', (code) => fail(new Error(`calibration counting worker exited (${code})`)));
  const next = <T extends FromWorker['type']>(type: T): Promise<Extract<FromWorker, { type: T }>> =>
    failure ? Promise.reject(failure) : new Promise((resolve, reject) => waiting.push({ type, resolve: resolve as (m: FromWorker) => void, reject }));
  try {
    await next('ready');
  } catch {
    await worker.terminate();
    return undefined;
  }
  worker.postMessage({ type: 'sites', sites });
  let inFlight = 0;
  const acks: Promise<unknown>[] = [];
  let closed = false;
  return {
    worker: true,
    async add(items) {
      if (failure) throw failure;
      // copies the worker owns (onnxruntime's output buffers may not be transferable)
      const copies = items.map((it) => ({ site: it.site, data: it.data.slice(), absmax: it.absmax }));
      const done = (): void => void inFlight--;
      acks.push(next('ack').then(done, done)); // (a failure is thrown by the next add or finish)
      inFlight++;
      worker.postMessage({ type: 'sample', items: copies }, copies.map((c) => c.data.buffer as ArrayBuffer));
      while (inFlight > IN_FLIGHT) await acks.shift();
      if (failure) throw failure;
    },
    async finish() {
      await Promise.all(acks.splice(0));
      if (failure) throw failure;
      const states = next('states');
      worker.postMessage({ type: 'finish' });
      return (await states).states;
    },
    async close() {
      if (closed) return;
      closed = true;
      failure ??= new Error('calibration counting worker closed');
      await worker.terminate();
    },
  };
}
