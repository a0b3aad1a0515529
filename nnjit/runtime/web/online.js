// Online JIT: the model answers at once with the schedules it has, and tunes between inferences.
//
//   const online = model.startOnline({ budgetMs: 60000, onSwap, onProgress });
//   const { outputs, ms, waitMs } = await model.run(inputs);   // never waits for more than one tuning step
//   online.status()                                            // kernels tuned, steps, swaps, longest step
//   await model.stopOnline();
//
// Tuning is cut into steps, each one measurement: the Wasm thread choice (whole runs both ways), a
// kernel's default schedule (its baseline), or one variant of one kernel (in place, as tuner.js does:
// recompute the kernel's inputs from the last inference's inputs, run the default and the variant on
// poisoned outputs, reject the variant unless its output equals the default's, time it; a variant
// twice as slow as the best after one batch is not timed further). A step runs only when no
// inference is waiting or running; an inference that arrives during a step waits for that step to
// end and then goes first, so tuning never holds it up for more than one step. Work a step can do
// without the device (creating a variant's WebGPU pipeline, asynchronously) happens before the
// step, while inferences run. When a correct variant beats the kernel's current best by tuner.js's
// MARGIN, it is swapped in at once (its pipeline / export) for every later inference. Kernels whose
// schedule IndexedDB already holds for this device are not tuned again; kernel-db offers (`service`)
// are measured first. Each kernel's result goes to IndexedDB when it is done.

import {
  BATCHES, MARGIN, THREADS_KEY, median, sameOutput, serviceDevice, sharedOffers, storeRows, targetsOf, tuneThreads, upload,
} from "./tuner.js";

/** A variant whose first timed batch takes this many times the kernel's best is not timed further. */
const SLOWER = 2;

/** Resolve after the event loop has run other tasks (a macrotask; not clamped like setTimeout). */
export function nextTask() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** Resolve once performance.now() reaches `due` (a timer for most of it: nested timers are clamped to 4 ms). */
export async function until(due) {
  const early = due - performance.now() - 4;
  if (early > 0) await new Promise((resolve) => setTimeout(resolve, early));
  do await nextTask(); while (performance.now() < due);
}

/**
 * What WebGPUModel and WasmModel share: `run` serialises inferences with online tuning steps.
 * Subclasses implement `execute(inputs)` (one inference, `{outputs, ms}`).
 */
export class Model {
  constructor() {
    this.online = null;
    this.busy = null; // settles when the device's current user (an inference or a tuning step) is done
    this.runsWaiting = 0;
    this.stepsSinceRun = 0;
  }

  /**
   * Run the model. Returns `execute`'s result plus `waitMs` (how long the run waited for a tuning
   * step), `startedAt` (performance.now() when it started) and `stepsBefore` (tuning steps since
   * the previous inference).
   */
  async run(inputs) {
    const requested = performance.now();
    this.runsWaiting += 1;
    try {
      while (this.busy) await this.busy;
      const startedAt = performance.now();
      const stepsBefore = this.stepsSinceRun;
      this.stepsSinceRun = 0;
      const result = await this.exclusive(() => this.execute(inputs));
      return { ...result, waitMs: startedAt - requested, startedAt, stepsBefore };
    } finally {
      this.runsWaiting -= 1;
      if (this.online) this.online.wake();
    }
  }

  /** Run `work` (an async function) as the device's only user; the caller has seen `busy` empty. */
  async exclusive(work) {
    const running = work();
    const settled = running.then(() => {}, () => {});
    this.busy = settled;
    try {
      return await running;
    } finally {
      if (this.busy === settled) this.busy = null;
    }
  }

  /**
   * Start tuning between inferences (options: see OnlineJit); returns the OnlineJit. One that is
   * running or complete is returned as it is; one that was stopped is resumed (kernels it finished
   * are not tuned again).
   */
  startOnline(options = {}) {
    const previous = this.online;
    if (previous && (previous.running || previous.complete)) return previous;
    const known = [...Object.keys(this.storedChoices || {}), ...(previous ? previous.finished : [])];
    this.online = new OnlineJit(this, { known, ...options });
    this.online.start();
    return this.online;
  }

  /** Stop online tuning at the next step boundary (what was swapped in stays). */
  async stopOnline() {
    if (this.online) await this.online.stop();
  }
}

function scheduleOf(target, index) {
  return target.variants[index];
}

/** The online tuner of one model. */
export class OnlineJit {
  /**
   * `budgetMs`: stop starting steps this long after `start`; `onSwap(event)`, `onProgress(status)`:
   * callbacks; `service`: a kernel-db service URL; `version`: the bundle's nnjit version (the
   * IndexedDB key); `store`: keep results in IndexedDB; `known`: signatures not to tune (their
   * schedule came from IndexedDB; default: the model's `storedChoices`).
   */
  constructor(model, { budgetMs = 120000, onSwap = () => {}, onProgress = () => {}, service = null, version = "", store = true, known = null } = {}) {
    this.model = model;
    this.backend = model.plan.kernels ? "webgpu" : "wasm";
    this.options = { budgetMs, onSwap, onProgress, service, version, store };
    this.known = new Set(known || Object.keys(model.storedChoices || {}));
    this.running = false;
    this.stopped = false;
    this.complete = false;
    this.rows = [];
    this.skipped = 0;
    this.total = 0;
    this.steps = 0;
    this.stepMs = [];
    this.swaps = [];
    this.waiter = null;
    this.error = null;
    this.finished = new Set(); // signatures (and THREADS_KEY) whose tuning is done
  }

  start() {
    this.running = true;
    this.startedAt = performance.now();
    this.done = this.loop().catch((error) => {
      this.error = String(error && error.message ? error.message : error);
    }).finally(() => {
      this.running = false;
      this.finishedAt = performance.now();
      this.options.onProgress(this.status());
    });
    return this;
  }

  async stop() {
    this.stopped = true;
    this.wake();
    await this.done;
  }

  /** Whether a step may use the device now: no inference waits or runs, and one has run (steps use its inputs). */
  free() {
    return !this.model.runsWaiting && !this.model.busy && this.model.lastInputs !== undefined;
  }

  /** Called when an inference ends: a waiting step may go. */
  wake() {
    if (this.waiter && (this.stopped || this.free())) {
      const resolve = this.waiter;
      this.waiter = null;
      resolve();
    }
  }

  /** Resolves when a step may use the device (`free`). */
  idle() {
    if (this.stopped || this.free()) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** The tasks, in order: threads (Wasm), every kernel's baseline, then variants by kernel cost. */
  async loop() {
    const model = this.model;
    const { budgetMs, service, version } = this.options;
    const targets = targetsOf(model).filter((t) => !this.known.has(t.signature));
    this.skipped = targetsOf(model).length - targets.length;
    this.total = targets.length + this.skipped;
    if (this.backend === "wasm") await model.poolReady;
    if (this.backend === "wasm" && model.pool && !this.known.has(THREADS_KEY)) {
      await this.step(async () => {
        const before = model.activeThreads;
        const row = await tuneThreads(model);
        const after = model.activeThreads;
        if (after !== before) {
          const ms = (threads) => row.timings[threads > 1 ? 1 : 0];
          this.swapped({ kernel: row.kernel, signature: THREADS_KEY, from: `${before} threads`, to: `${after} threads`, fromMs: ms(before), toMs: ms(after) });
        }
        await this.keep(row);
      });
    }
    for (const target of targets) {
      if (this.over(budgetMs)) return;
      const row = { target, signature: target.signature, kernel: target.name, template: target.template, uses: target.count,
        variants: target.variants.length, measured: 1, rejected: 0, source: "online", best: target.defaultIndex, timings: {}, done: false };
      row.defaultPrepared = await target.prepare(target.defaultIndex);
      await this.step(async () => {
        await target.prefix();
        const samples = [];
        for (let i = 0; i < BATCHES; i++) samples.push(await target.time(row.defaultPrepared));
        row.defaultMs = row.bestMs = row.timings[target.defaultIndex] = median(samples);
      });
      this.rows.push(row);
    }
    const ordered = [...this.rows].sort((a, b) => b.defaultMs * b.uses - a.defaultMs * a.uses);
    const offers = service ? await sharedOffers(service, await serviceDevice(model, this.backend), ordered, version).catch(() => ({})) : {};
    const queue = [];
    for (const row of ordered) {
      const offered = offers[row.signature] || { device: [], hints: [] };
      const order = [...new Set([...offered.device, ...offered.hints, ...row.target.variants.keys()])];
      for (const variant of order) if (variant !== row.target.defaultIndex) queue.push({ row, variant });
      queue.push({ row, last: true });
    }
    const prepare = (task) => {
      if (task && !task.last && !task.prepared) task.prepared = task.row.target.prepare(task.variant).then((p) => ({ p }), (e) => ({ e }));
    };
    for (let i = 0; i < queue.length; i++) {
      if (this.over(budgetMs)) return;
      const task = queue[i];
      if (task.last) {
        await this.finish(task.row);
        continue;
      }
      prepare(task);
      prepare(queue.slice(i + 1).find((t) => !t.last)); // the next pipeline compiles while this one is measured
      const { p: prepared, e: failed } = await task.prepared;
      if (failed) {
        task.row.rejected += 1; // a variant this device cannot build scores as infinitely slow
        continue;
      }
      await this.step(() => this.measure(task.row, task.variant, prepared));
    }
    this.complete = true;
    if (service) await upload(service, await serviceDevice(model, this.backend), this.rows, version).catch(() => 0);
  }

  over(budgetMs) {
    return this.stopped || performance.now() - this.startedAt > budgetMs;
  }

  /** One step: wait until no inference waits, then `work` alone on the device. */
  async step(work) {
    do {
      await this.idle();
      if (this.stopped) return;
    } while (!this.free()); // an inference may have taken the device while `idle` resolved
    const started = performance.now();
    await this.model.exclusive(work);
    this.stepMs.push(performance.now() - started);
    this.steps += 1;
    this.model.stepsSinceRun += 1;
    this.options.onProgress(this.status());
    await nextTask(); // let requests that arrived as tasks register before the next step
  }

  /** One variant in place: checked against the default's output on the same inputs, then timed. */
  async measure(row, variant, prepared) {
    const target = row.target;
    await target.prefix();
    const reference = await target.output(row.defaultPrepared);
    const output = await target.output(prepared);
    row.measured += 1;
    if (!sameOutput(output, reference, target.storage)) {
      row.rejected += 1;
      return;
    }
    const samples = [await target.time(prepared)];
    if (samples[0] > SLOWER * row.bestMs) {
      row.timings[variant] = samples[0]; // clearly slower: no more batches, which keeps the step short
      return;
    }
    while (samples.length < BATCHES) samples.push(await target.time(prepared));
    const ms = median(samples);
    row.timings[variant] = ms;
    if (ms < row.bestMs * MARGIN) {
      const from = row.best;
      const fromMs = row.bestMs;
      row.best = variant;
      row.bestMs = ms;
      await target.choose(variant);
      this.swapped({ kernel: row.kernel, signature: row.signature, from: scheduleOf(target, from), to: scheduleOf(target, variant), fromMs, toMs: ms });
    }
  }

  swapped(event) {
    const swap = { t: performance.now(), ...event, speedup: event.fromMs / event.toMs };
    this.swaps.push(swap);
    this.options.onSwap(swap);
  }

  async finish(row) {
    row.done = true;
    row.chosen = scheduleOf(row.target, row.best);
    await this.keep(row);
  }

  async keep(row) {
    this.finished.add(row.signature);
    if (!this.options.store) return;
    const { target, defaultPrepared, timings, ...clean } = row;
    await storeRows(await this.model.fingerprint(), this.backend, this.options.version, [clean]);
  }

  /** Where tuning stands (plain data: the page shows it, Python reads it). */
  status() {
    const sorted = [...this.stepMs].sort((a, b) => a - b);
    return {
      running: this.running, complete: this.complete, error: this.error, backend: this.backend, startedAt: this.startedAt,
      elapsedMs: (this.finishedAt || performance.now()) - this.startedAt,
      kernels: this.total, tuned: this.rows.filter((r) => r.done).length, skipped: this.skipped,
      steps: this.steps, measured: this.rows.reduce((s, r) => s + r.measured, 0), rejected: this.rows.reduce((s, r) => s + r.rejected, 0),
      maxStepMs: sorted.length ? sorted[sorted.length - 1] : 0, medianStepMs: sorted.length ? sorted[sorted.length >> 1] : 0,
      swaps: this.swaps.map((s) => ({ ...s })),
    };
  }
}
