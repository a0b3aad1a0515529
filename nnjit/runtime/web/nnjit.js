// nnjit's browser runtime: loads a compiled bundle and runs it on WebGPU or on Wasm SIMD.
//
//   import { loadBundle, WebGPUModel, WasmModel } from "./nnjit.js";
//   const bundle = await loadBundle("model/");            // manifest.json, WGSL, .wasm, weights.bin
//   const gpu = await WebGPUModel.create(bundle);         // pipelines created asynchronously, in parallel
//   const { outputs, ms } = await gpu.run(inputs);        // inputs: { name: TypedArray (storage) }
//   const cpu = await WasmModel.create(bundle);           // threads when the page is cross-origin isolated
//
// A bundle is what `nnjit export` writes (nnjit/runtime/bundle.py documents the manifest). The
// runtime decides nothing about kernels: it creates the buffers, pipelines and calls the manifest
// lists, in its order. Tensors travel in their 4-byte storage (f32, i32 for i32/i64, u32/i32 0/1 for
// booleans); `toStorage` / `fromStorage` convert from and to the model's dtypes. Plain ES module, no
// bundler; only browser APIs (WebGPU, WebAssembly, Workers, fetch).

import { CONTROL_WORDS, FAILED, RUN, STOP } from "./wasm_worker.js";

export const FORMAT = "nnjit-bundle";
export const FORMAT_VERSION = 1;
/** The pseudo kernel signature under which the tuner keeps the Wasm thread-count choice. */
export const THREADS_KEY = "wasm:threads";

// Limits raised to the adapter's maximum (WebGPU's defaults are lower than most devices allow).
const RAISED_LIMITS = [
  "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ", "maxComputeWorkgroupStorageSize", "maxStorageBufferBindingSize",
  "maxBufferSize", "maxStorageBuffersPerShaderStage", "maxComputeWorkgroupsPerDimension",
];

/** Fetch a bundle's manifest and weights; `base` is the folder URL (ending in "/"). */
export async function loadBundle(base, { fetchImpl = fetch } = {}) {
  const url = new URL(base, globalThis.location ? globalThis.location.href : undefined);
  const response = await fetchImpl(new URL("manifest.json", url));
  if (!response.ok) throw new Error(`nnjit: cannot load ${url}manifest.json (HTTP ${response.status})`);
  const manifest = await response.json();
  if (manifest.format !== FORMAT || manifest.version !== FORMAT_VERSION) {
    throw new Error(`nnjit: ${url}manifest.json is not an nnjit bundle of version ${FORMAT_VERSION}`);
  }
  const weights = await fetchBytes(new URL(manifest.weights.file, url), fetchImpl);
  if (weights.byteLength !== manifest.weights.bytes) {
    throw new Error(`nnjit: ${manifest.weights.file} has ${weights.byteLength} bytes, expected ${manifest.weights.bytes}`);
  }
  return { url, manifest, weights };
}

export async function fetchBytes(url, fetchImpl = fetch) {
  const response = await fetchImpl(url);
  if (!response.ok) throw new Error(`nnjit: cannot load ${url} (HTTP ${response.status})`);
  return new Uint8Array(await response.arrayBuffer());
}

/** A tensor of the model's dtype as its storage typed array (int64 must fit int32). */
export function toStorage(spec, values) {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`input '${spec.name}': expected ${count} elements, got ${values.length}`);
  if (spec.storage === "f32") return Float32Array.from(values, Number);
  const out = spec.storage === "u32" ? new Uint32Array(count) : new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = Number(values[i]);
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
      throw new Error(`input '${spec.name}': value ${values[i]} does not fit the runtime's 32-bit integers`);
    }
    out[i] = spec.dtype === "bool" ? (v ? 1 : 0) : v;
  }
  return out;
}

/** The typed array view of raw storage bytes. */
export function fromStorage(spec, bytes) {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return spec.storage === "f32" ? new Float32Array(buffer) : spec.storage === "u32" ? new Uint32Array(buffer) : new Int32Array(buffer);
}

function storageOf(input, data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const expected = 4 * input.shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== expected) {
    throw new Error(`input '${input.name}': expected ${expected} bytes of ${input.storage} storage, got ${bytes.byteLength}`);
  }
  return bytes;
}

function checkInputs(specs, inputs) {
  const names = specs.map((s) => s.name);
  const given = Object.keys(inputs);
  if (given.length !== names.length || names.some((n) => !(n in inputs))) {
    throw new Error(`the model takes inputs [${names.join(", ")}]; got [${given.join(", ")}]`);
  }
}

/** SHA-256 hex of a string (the key of device fingerprints). */
export async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- WebGPU -------------------------------------------------------------------------------------

/** The model's kernels on one WebGPU device. */
export class WebGPUModel {
  /** Request a device, create every buffer and (asynchronously, in parallel) every pipeline. */
  static async create(bundle, { choices = {}, adapter = null } = {}) {
    const plan = bundle.manifest.webgpu;
    if (!plan) throw new Error("nnjit: this bundle has no WebGPU build");
    if (!globalThis.navigator || !navigator.gpu) {
      throw new Error("nnjit: WebGPU is not available here (no navigator.gpu; it needs a secure context such as https or 127.0.0.1)");
    }
    adapter = adapter || (await navigator.gpu.requestAdapter({ powerPreference: "high-performance" }));
    if (!adapter) throw new Error("nnjit: navigator.gpu offers no adapter");
    const requiredLimits = {};
    for (const name of RAISED_LIMITS) if (name in adapter.limits) requiredLimits[name] = adapter.limits[name];
    const timestamps = adapter.features.has("timestamp-query");
    const device = await adapter.requestDevice({ requiredFeatures: timestamps ? ["timestamp-query"] : [], requiredLimits });
    const model = new WebGPUModel(bundle, adapter, device, timestamps);
    await model.compile(choices);
    return model;
  }

  constructor(bundle, adapter, device, timestamps) {
    this.bundle = bundle;
    this.plan = bundle.manifest.webgpu;
    this.adapter = adapter;
    this.device = device;
    this.timestamps = timestamps;
    this.errors = [];
    device.addEventListener("uncapturederror", (event) => this.errors.push(event.error.message));
    this.lost = device.lost.then((info) => {
      this.lostReason = info.message || info.reason || "lost";
    });
    this.texts = new Map(); // file -> WGSL text
    this.pipelines = new Map(); // file -> Promise<GPUComputePipeline>
    this.chosen = this.plan.kernels.map((k) => k.variants.findIndex((v) => v.default));
    this.buffers = this.plan.buffers.map((b) => this.createBuffer(b));
    this.layouts = new Map(); // binding count -> GPUBindGroupLayout
  }

  /** Adapter description used to key tuned schedules. */
  async fingerprint() {
    const info = this.adapter.info || {};
    const limits = RAISED_LIMITS.map((n) => `${n}=${this.adapter.limits[n]}`).join(",");
    return sha256(`webgpu|${info.vendor}|${info.architecture}|${info.device}|${info.description}|${limits}`);
  }

  createBuffer(spec) {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const buffer = this.device.createBuffer({ size: Math.max(4, spec.bytes), usage });
    if (spec.weight) {
      const [offset, length] = spec.weight;
      this.device.queue.writeBuffer(buffer, 0, this.bundle.weights, offset, length);
    }
    return buffer;
  }

  layout(count) {
    if (!this.layouts.has(count)) {
      const entries = [];
      for (let i = 0; i < count; i++) {
        entries.push({ binding: i, visibility: GPUShaderStage.COMPUTE, buffer: { type: i === count - 1 ? "storage" : "read-only-storage" } });
      }
      this.layouts.set(count, this.device.createBindGroupLayout({ entries }));
    }
    return this.layouts.get(count);
  }

  async text(file) {
    if (!this.texts.has(file)) {
      this.texts.set(file, fetch(new URL(file, this.bundle.url)).then((r) => {
        if (!r.ok) throw new Error(`nnjit: cannot load ${file} (HTTP ${r.status})`);
        return r.text();
      }));
    }
    return this.texts.get(file);
  }

  /** The pipeline of one kernel variant, created once with createComputePipelineAsync. */
  pipeline(kernelIndex, variantIndex) {
    const kernel = this.plan.kernels[kernelIndex];
    const variant = kernel.variants[variantIndex];
    if (!this.pipelines.has(variant.file)) {
      const created = this.text(variant.file).then(async (code) => {
        const module = this.device.createShaderModule({ code, label: kernel.name });
        const info = await module.getCompilationInfo();
        const errors = info.messages.filter((m) => m.type === "error");
        if (errors.length) throw new Error(`nnjit: kernel ${kernel.name} (${variant.schedule}) does not compile: ${errors[0].message}`);
        const layout = this.device.createPipelineLayout({ bindGroupLayouts: [this.layout(kernel.inputs + 1)] });
        return this.device.createComputePipelineAsync({ layout, compute: { module, entryPoint: "main" }, label: kernel.name });
      });
      this.pipelines.set(variant.file, created);
    }
    return this.pipelines.get(variant.file);
  }

  /** Create the chosen variant of every kernel (`choices`: kernel signature -> schedule text). */
  async compile(choices = {}) {
    this.plan.kernels.forEach((kernel, index) => {
      const wanted = choices[kernel.signature];
      const found = wanted === undefined ? -1 : kernel.variants.findIndex((v) => v.schedule === wanted);
      if (found >= 0) this.chosen[index] = found;
    });
    await Promise.all(this.plan.kernels.map((_, index) => this.pipeline(index, this.chosen[index])));
    await this.bind();
  }

  /** Use variant `variantIndex` for every kernel with this signature. */
  async choose(signature, variantIndex) {
    this.plan.kernels.forEach((kernel, index) => {
      if (kernel.signature === signature) this.chosen[index] = variantIndex;
    });
    await this.bind();
  }

  async bind() {
    this.steps = await Promise.all(this.plan.steps.map((step) => this.stepFor(step, this.chosen[step.kernel])));
  }

  async stepFor(step, variantIndex) {
    const kernel = this.plan.kernels[step.kernel];
    const pipeline = await this.pipeline(step.kernel, variantIndex);
    const entries = [...step.args, step.output].map((b, i) => ({ binding: i, resource: { buffer: this.buffers[b] } }));
    const bindGroup = this.device.createBindGroup({ layout: this.layout(kernel.inputs + 1), entries });
    return { pipeline, bindGroup, grid: kernel.variants[variantIndex].grid };
  }

  encode(encoder, steps, timestampWrites) {
    const pass = encoder.beginComputePass(timestampWrites ? { timestampWrites } : {});
    for (const step of steps) {
      if (Math.min(...step.grid) > 0) {
        pass.setPipeline(step.pipeline);
        pass.setBindGroup(0, step.bindGroup);
        pass.dispatchWorkgroups(...step.grid);
      }
    }
    pass.end();
  }

  check() {
    if (this.lostReason) throw new Error(`nnjit: the WebGPU device was lost: ${this.lostReason}`);
    if (this.errors.length) throw new Error(`nnjit: WebGPU error: ${this.errors[0]}`);
  }

  /** Run the model; `inputs` maps names to storage typed arrays (or Uint8Array bytes). */
  async run(inputs) {
    const started = performance.now();
    this.write(inputs);
    const encoder = this.device.createCommandEncoder();
    const staging = [];
    let done = 0;
    const points = [...new Set(this.plan.outputs.map((o) => o.after))].sort((a, b) => a - b);
    for (const point of points) {
      if (point + 1 > done) this.encode(encoder, this.steps.slice(done, point + 1));
      done = Math.max(done, point + 1);
      for (const output of this.plan.outputs) {
        if (output.after !== point) continue;
        const size = this.plan.buffers[output.buffer].bytes;
        const target = this.device.createBuffer({ size: Math.max(4, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        encoder.copyBufferToBuffer(this.buffers[output.buffer], 0, target, 0, Math.max(4, size));
        staging.push([output, target]);
      }
    }
    if (done < this.steps.length) this.encode(encoder, this.steps.slice(done));
    this.device.queue.submit([encoder.finish()]);
    const outputs = {};
    await Promise.all(staging.map(async ([output, target]) => {
      await target.mapAsync(GPUMapMode.READ);
      const count = output.shape.reduce((a, b) => a * b, 1);
      outputs[output.name] = new Uint8Array(target.getMappedRange().slice(0, 4 * count));
      target.unmap();
      target.destroy();
    }));
    this.check();
    return { outputs, ms: performance.now() - started };
  }

  write(inputs) {
    checkInputs(this.plan.inputs, inputs);
    this.lastInputs = inputs;
    for (const input of this.plan.inputs) {
      const bytes = storageOf(input, inputs[input.name]);
      this.device.queue.writeBuffer(this.buffers[input.buffer], 0, bytes);
    }
  }

  /** Run the steps before `step` on the last inputs: step `step`'s inputs then hold their true values. */
  async prefix(step) {
    this.write(this.lastInputs);
    const encoder = this.device.createCommandEncoder();
    if (step > 0) this.encode(encoder, this.steps.slice(0, step));
    this.device.queue.submit([encoder.finish()]);
    await this.device.queue.onSubmittedWorkDone();
  }

  /** Milliseconds of `repeats` dispatches of one step alone (GPU timestamps when available). */
  async timeStep(step, repeats) {
    const encoder = this.device.createCommandEncoder();
    const steps = Array(repeats).fill(step);
    if (this.timestamps) {
      const querySet = this.device.createQuerySet({ type: "timestamp", count: 2 });
      const resolve = this.device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const read = this.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      this.encode(encoder, steps, { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 });
      encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, read, 0, 16);
      this.device.queue.submit([encoder.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const [begin, end] = new BigUint64Array(read.getMappedRange().slice(0));
      read.unmap();
      [querySet, resolve, read].forEach((r) => r.destroy());
      const ns = Number(end - begin);
      if (ns > 0) return ns / 1e6 / repeats;
    }
    const started = performance.now();
    this.encode(encoder, steps);
    this.device.queue.submit([encoder.finish()]);
    await this.device.queue.onSubmittedWorkDone();
    return (performance.now() - started) / repeats;
  }

  /** A copy of one buffer's bytes. */
  async read(bufferIndex) {
    const size = Math.max(4, this.plan.buffers[bufferIndex].bytes);
    const target = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(this.buffers[bufferIndex], 0, target, 0, size);
    this.device.queue.submit([encoder.finish()]);
    await target.mapAsync(GPUMapMode.READ);
    const bytes = new Uint8Array(target.getMappedRange().slice(0));
    target.unmap();
    target.destroy();
    return bytes;
  }

  describe() {
    const info = this.adapter.info || {};
    return `WebGPU ${[info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "adapter"}`;
  }

  destroy() {
    this.buffers.forEach((b) => b.destroy());
    this.device.destroy();
  }
}

// --- Wasm ---------------------------------------------------------------------------------------

/** Whether this page may share Wasm memory between workers. */
export function canUseThreads() {
  return Boolean(globalThis.crossOriginIsolated && typeof SharedArrayBuffer !== "undefined");
}

/** The model's Wasm SIMD program, single-threaded in this thread or multi-threaded in workers. */
export class WasmModel {
  /**
   * Compile (while the weights are already in memory: `loadBundle` fetched them) and instantiate.
   * `threads`: worker count; default `navigator.hardwareConcurrency` when the page is cross-origin
   * isolated, else 1 with `message` saying why.
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
    const variant = await pickBinary(bundle, section, count > 1);
    const model = new WasmModel(bundle, section, variant, count, message);
    await model.instantiate(choices);
    return model;
  }

  constructor(bundle, section, variant, threads, message) {
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

  async instantiate(choices) {
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
      bytes.set(this.bundle.weights.subarray(fileOffset, fileOffset + length), memoryOffset);
    }
    this.applyChoices(choices);
    if (this.threads > 1) {
      this.threads = Math.min(this.threads, plan.max_threads || 1);
      await this.restartPool();
    }
  }

  applyChoices(choices) {
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

  /** Run the steps before `step` on the last inputs (in this thread): step `step`'s inputs are then true. */
  async prefix(step) {
    this.write(this.lastInputs);
    for (let i = 0; i < step; i++) this.call(this.chosen[i]);
  }

  /** Run the model; same arguments and result as `WebGPUModel.run`. */
  async run(inputs) {
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

  /** (Re)start the workers with the steps as chosen now (after tuning changed a choice). */
  async restartPool() {
    if (this.threads <= 1) return;
    if (this.pool) this.pool.stop();
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
    if (this.pool) this.pool.stop();
  }
}

/** The relaxed-SIMD binary when this engine validates it, else the plain one; threaded when asked. */
async function pickBinary(bundle, section, threaded) {
  const builds = section.builds.filter((b) => Boolean(b.plan.threads) === threaded);
  for (const build of builds) {
    const bytes = await fetchBytes(new URL(build.file, bundle.url));
    if (!WebAssembly.validate(bytes)) continue;
    return { ...build, module: await WebAssembly.compile(bytes) };
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
