// nnjit's Wasm SIMD runtime: the model's Wasm program, single-threaded in this thread or
// multi-threaded in workers (wasm_worker.js documents their protocol). Re-exported by nnjit.js.

import { bundleFiles, bundleWeights } from "./cache.js";
import { Model } from "./online.js";
import { checkInputs, sha256, storageOf } from "./tensors.js";
import { THREADS_KEY } from "./tuner.js";
import { CONTROL_WORDS, FAILED, RUN, STOP } from "./wasm_worker.js";

/** Whether this page may share Wasm memory between workers. */
export function canUseThreads() {
  return Boolean(globalThis.crossOriginIsolated && typeof SharedArrayBuffer !== "undefined");
}

/** The model's Wasm SIMD program, single-threaded in this thread or multi-threaded in workers. */
export class WasmModel extends Model {
  /**
   * Compile the binary as it streams in (`WebAssembly.compileStreaming`, from the Cache API on a
   * return visit) while the weights arrive, then instantiate. `threads`: worker count; default
   * `navigator.hardwareConcurrency` when the page is cross-origin isolated, else 1 with `message`
   * saying why. `choices`: kernel signature -> schedule text, or an async function of the model
   * (before instantiation: it can read the model's `fingerprint()`) that returns them.
   */
  static async create(bundle, { threads = null, choices = {} } = {}) {
    const section = bundle.manifest.wasm;
    if (!section) throw new Error("nnjit: this bundle has no Wasm build");
    const isolated = canUseThreads();
    const wanted = threads === null ? (isolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1) : threads;
    let message = "";
    let count = wanted;
    if (wanted > 1 && !isolated) {
      message = "Wasm runs single-threaded: this page is not cross-origin isolated (serve it with COOP/COEP headers, e.g. `nnjit serve`)";
      count = 1;
    } else if (wanted > 1 && !section.threaded) {
      message = "Wasm runs single-threaded: this bundle has no threaded build";
      count = 1;
    }
    const stages = {};
    const mark = (stage) => (value) => {
      stages[stage] = performance.now();
      return value;
    };
    const [variant, weights] = await Promise.all([pickBinary(bundle, section, count > 1).then(mark("compiled")), bundleWeights(bundle).then(mark("weights"))]);
    const model = new WasmModel(bundle, section, variant, count, message);
    model.stages = stages;
    const chosen = typeof choices === "function" ? await choices(model) : choices;
    stages.choices = performance.now();
    await model.instantiate(weights, chosen || {});
    stages.instantiated = performance.now();
    return model;
  }

  constructor(bundle, section, variant, threads, message) {
    super();
    this.bundle = bundle;
    this.section = section;
    this.build = variant;
    this.plan = variant.plan;
    this.threads = threads;
    this.message = message;
    this.errors = [];
    this.chosen = this.plan.steps.map((name) => name);
    this.useThreads = true;
  }

  async instantiate(weights, choices) {
    const plan = this.plan;
    if (plan.threads) {
      this.memory = new WebAssembly.Memory({ initial: plan.pages, maximum: plan.pages, shared: true });
      this.instance = await WebAssembly.instantiate(this.build.module, { env: { memory: this.memory } });
    } else {
      this.instance = await WebAssembly.instantiate(this.build.module, {});
      this.memory = this.instance.exports.memory;
    }
    const bytes = new Uint8Array(this.memory.buffer);
    for (const [memoryOffset, fileOffset, length] of this.build.weights) {
      bytes.set(weights.subarray(fileOffset, fileOffset + length), memoryOffset);
    }
    this.applyChoices(choices);
    this.threads = Math.min(this.threads, plan.max_threads || 1);
    // The workers start in the background (a worker's start costs more than a small model's run):
    // runs use this thread until `poolReady` resolves.
    this.poolReady = this.restartPool().catch((error) => {
      this.message = `Wasm runs single-threaded: ${error.message}`;
    });
  }

  applyChoices(choices) {
    this.storedChoices = { ...this.storedChoices, ...choices };
    // "threads": whether the workers beat this thread alone on this device (tuner.js measures it).
    if (THREADS_KEY in choices) this.useThreads = choices[THREADS_KEY] !== "1";
    const variants = this.plan.variants || {};
    this.plan.steps.forEach((name, step) => {
      const options = variants[step];
      if (!options) return;
      const wanted = choices[options.signature];
      const found = options.exports.findIndex((e) => e.schedule === wanted);
      if (found >= 0) this.chosen[step] = options.exports[found].name;
    });
  }

  async fingerprint() {
    const ua = navigator.userAgentData ? JSON.stringify(navigator.userAgentData.platform) : navigator.platform;
    return sha256(`wasm|${ua}|${navigator.hardwareConcurrency}|threads=${this.threads}|relaxed=${this.build.relaxed}`);
  }

  call(name) {
    try {
      this.instance.exports[name](0, 1);
    } catch (error) {
      throw new Error(`nnjit: wasm kernel ${name} trapped: ${error.message}`);
    }
  }

  write(inputs) {
    checkInputs(this.plan.inputs, inputs);
    this.lastInputs = inputs;
    const bytes = new Uint8Array(this.memory.buffer);
    for (const input of this.plan.inputs) bytes.set(storageOf(input, inputs[input.name]), input.offset);
  }

  /** Run the steps before `step` on `inputs` (in this thread): step `step`'s inputs are then true. */
  async prefix(step, inputs = this.lastInputs) {
    this.write(inputs);
    for (let i = 0; i < step; i++) this.call(this.chosen[i]);
  }

  /** One inference now (`run` waits for a tuning step in progress first); as `WebGPUModel.execute`. */
  async execute(inputs) {
    const started = performance.now();
    this.write(inputs);
    const outputs = {};
    const read = (step) => {
      const bytes = new Uint8Array(this.memory.buffer);
      for (const output of this.plan.outputs) {
        if (output.after === step) outputs[output.name] = bytes.slice(output.offset, output.offset + 4 * output.count);
      }
    };
    read(-1);
    if (this.pool && this.useThreads) {
      const captures = await this.pool.run();
      const bytes = new Uint8Array(this.memory.buffer);
      const last = this.plan.steps.length - 1;
      this.plan.outputs.forEach((output, index) => {
        if (output.after === last) outputs[output.name] = bytes.slice(output.offset, output.offset + 4 * output.count);
      });
      for (const [index, data] of captures) outputs[this.plan.outputs[index].name] = data;
    } else {
      this.chosen.forEach((name, step) => {
        this.call(name);
        read(step);
      });
    }
    return { outputs, ms: performance.now() - started };
  }

  /**
   * (Re)start the workers with the steps as chosen now (after tuning changed a choice); none when
   * this thread alone is the choice (tuner.js measured that the workers lose here).
   */
  async restartPool() {
    if (this.pool) this.pool.stop();
    this.pool = null;
    if (this.threads <= 1 || !this.useThreads) return;
    this.pool = await WorkerPool.start(this.build.module, this.memory, { ...this.plan, steps: [...this.chosen] }, this.threads);
  }

  /** Threads a run uses now. */
  get activeThreads() {
    return this.pool && this.useThreads ? this.threads : 1;
  }

  describe() {
    const threads = this.activeThreads;
    return `Wasm SIMD${this.build.relaxed ? " (relaxed)" : ""}, ${threads} thread${threads > 1 ? "s" : ""}`;
  }

  destroy() {
    if (this.online) this.online.stop();
    if (this.pool) this.pool.stop();
  }
}

/** The relaxed-SIMD binary when this engine validates it, else the plain one; threaded when asked. */
async function pickBinary(bundle, section, threaded) {
  const builds = section.builds.filter((b) => Boolean(b.plan.threads) === threaded);
  const files = bundleFiles(bundle);
  for (const build of builds) {
    let module;
    try {
      module = await WebAssembly.compileStreaming(files.response(build.file));
    } catch (error) {
      if (error instanceof WebAssembly.CompileError) continue; // e.g. no relaxed SIMD here: the next one
      // A host that does not send application/wasm: compile from the bytes.
      const bytes = await files.bytes(build.file);
      if (!WebAssembly.validate(bytes)) continue;
      module = await WebAssembly.compile(bytes);
    }
    return { ...build, module };
  }
  throw new Error(`nnjit: this browser validates none of the bundle's ${threaded ? "threaded " : ""}Wasm binaries`);
}

/** Workers sharing the model's memory (wasm_worker.js documents the protocol). */
class WorkerPool {
  static async start(module, memory, plan, threads) {
    const control = new SharedArrayBuffer(4 * CONTROL_WORDS);
    const pool = new WorkerPool(plan, control, threads);
    const ready = [];
    for (let tid = 0; tid < threads; tid++) {
      const worker = new Worker(new URL("./wasm_worker.js", import.meta.url), { type: "module" });
      pool.workers.push(worker);
      ready.push(new Promise((resolve, reject) => {
        worker.onerror = (event) => reject(new Error(`nnjit: wasm worker ${tid} failed to start: ${event.message}`));
        worker.onmessage = (event) => {
          if (event.data.type === "ready") resolve();
          else pool.receive(event.data, reject);
        };
      }));
      worker.postMessage({ module, memory, plan, tid, nt: threads, control });
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      pool.stop();
      throw error;
    }
    for (const worker of pool.workers) worker.onmessage = (event) => pool.receive(event.data);
    return pool;
  }

  constructor(plan, control, threads) {
    this.plan = plan;
    this.control = new Int32Array(control);
    this.threads = threads;
    this.workers = [];
    this.pending = null;
    this.errors = [];
  }

  receive(message, reject = null) {
    if (message.type === "error") {
      this.errors.push(message.message);
      if (reject) reject(new Error(`nnjit: ${message.message}`));
    } else if (message.type === "done" && this.pending && message.generation === this.pending.generation) {
      const { resolve, reject: fail } = this.pending;
      this.pending = null;
      if (message.failed) fail(new Error(`nnjit: ${this.errors.shift() || "a wasm kernel trapped"}`));
      else resolve(message.captures);
    }
  }

  /** One run: the inputs are already in memory; returns the captured mid-run outputs by index. */
  run() {
    if (this.pending) throw new Error("nnjit: a Wasm run is already in progress");
    Atomics.store(this.control, FAILED, 0);
    return new Promise((resolve, reject) => {
      const generation = Atomics.load(this.control, RUN) + 1;
      this.pending = { generation, resolve, reject };
      Atomics.store(this.control, RUN, generation);
      Atomics.notify(this.control, RUN);
    });
  }

  stop() {
    Atomics.store(this.control, STOP, 1);
    Atomics.add(this.control, RUN, 1);
    Atomics.notify(this.control, RUN);
    for (const worker of this.workers) worker.terminate();
  }
}
