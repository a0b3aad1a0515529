// nnjit's browser runtime: loads a compiled bundle and runs it on WebGPU or on Wasm SIMD.
//
//   import { openBundle, WebGPUModel, WasmModel } from "./nnjit.js";
//   const bundle = await openBundle("model/");            // the manifest; weights stream in meanwhile
//   const gpu = await WebGPUModel.create(bundle);         // pipelines created asynchronously, in parallel
//   const { outputs, ms } = await gpu.run(inputs);        // inputs: { name: TypedArray (storage) }
//   const cpu = await WasmModel.create(bundle);           // threads when the page is cross-origin isolated
//   gpu.startOnline({ budgetMs: 60000, onSwap });         // tune between inferences (online.js)
//   deviceFit(bundle.manifest.webgpu, adapter);           // can this adapter run it? what to tell the visitor
//
// A bundle is what `nnjit export` writes (nnjit/runtime/bundle.py documents the manifest). The
// runtime decides nothing about kernels: it creates the buffers, pipelines and calls the manifest
// lists, in its order. Tensors travel in their 4-byte storage (f32, i32 for i32/i64, u32/i32 0/1 for
// booleans); `toStorage` / `fromStorage` convert from and to the model's dtypes. The bundle's files
// are kept in the Cache API under its content hash (cache.js). Plain ES modules, no bundler; only
// browser APIs (WebGPU, WebAssembly, Workers, fetch, Cache API, IndexedDB).

import { BundleFiles, bundleFiles, bundleWeights } from "./cache.js";
import { Model } from "./online.js";
import { checkInputs, sha256, storageOf } from "./tensors.js";
import { THREADS_KEY, storedChoices } from "./tuner.js";
import { WasmModel } from "./wasm.js";

export { BundleFiles, clearCachedBundles, fetchBytes } from "./cache.js";
export { Model, OnlineJit } from "./online.js";
export { fromStorage, sha256, toStorage } from "./tensors.js";
export { THREADS_KEY } from "./tuner.js";
export { WasmModel, canUseThreads } from "./wasm.js";

export const FORMAT = "nnjit-bundle";
export const FORMAT_VERSION = 1;

// Limits raised to the adapter's maximum (WebGPU's defaults are lower than most devices allow).
const RAISED_LIMITS = [
  "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ", "maxComputeWorkgroupStorageSize", "maxStorageBufferBindingSize",
  "maxBufferSize", "maxStorageBuffersPerShaderStage", "maxComputeWorkgroupsPerDimension",
];

// Per limit a build may need (manifest `webgpu.needs.limits`): what it counts, and whether
// `nnjit export --max-binding-bytes` can lower the need by splitting weights.
const NEEDED_LIMITS = {
  maxStorageBufferBindingSize: { what: "bytes in one storage binding", splits: true },
  maxBufferSize: { what: "bytes in one buffer", splits: true },
  maxStorageBuffersPerShaderStage: { what: "storage bindings in one kernel", splits: false },
};

/**
 * Whether `adapter` can run the bundle's WebGPU build (`plan`: `manifest.webgpu`), checked before
 * any device exists so that a shortfall is this clear message, not a WebGPU validation error.
 * `forced` makes the adapter look weaker than it is, so that tests reach the weak-device paths on
 * any adapter: `limits` {name: value} caps its limits, `absent` [feature] hides features, `source`
 * says who forced them (shown in the messages). Returns `{ok, error, notice, limits, features,
 * forced}`: `limits` / `features` as the build sees the adapter; `error` names the limit, what the
 * build needs and what the adapter allows; `notice` says how the build fits (weights split across
 * bindings) and that its kernels are fp32 whether or not the adapter has `shader-f16`.
 */
export function deviceFit(plan, adapter, forced = {}) {
  const needs = plan.needs || { limits: {}, features: [], bindingLimit: null, split: [] };
  const caps = forced.limits || {};
  const limits = {};
  for (const name of new Set([...RAISED_LIMITS, ...Object.keys(needs.limits)])) {
    if (!(name in adapter.limits)) continue;
    limits[name] = name in caps ? Math.min(adapter.limits[name], caps[name]) : adapter.limits[name];
  }
  const features = [...adapter.features].filter((f) => !(forced.absent || []).includes(f)).sort();
  const by = forced.source ? ` (forced by ${forced.source})` : "";
  const problems = [];
  for (const [name, needed] of Object.entries(needs.limits)) {
    if (!(name in limits) || limits[name] >= needed) continue;
    const known = NEEDED_LIMITS[name] || { what: "", splits: false };
    // Splitting helps only when every buffer over the limit is a weight (intermediates stay whole).
    const splits = known.splits && plan.buffers.every((b) => b.role === "weight" || Math.max(4, b.bytes) <= limits[name]);
    problems.push(`this build needs ${needed} ${known.what} (${name}), and this device allows ${limits[name]}${caps[name] < adapter.limits[name] ? by : ""}` +
      (splits ? `: export it for this device with \`nnjit export --max-binding-bytes ${limits[name]}\`` : ""));
  }
  for (const feature of needs.features) {
    if (!features.includes(feature)) problems.push(`this build needs the WebGPU feature ${feature}, which this device lacks`);
  }
  const f16 = features.includes("shader-f16") ? "available, not used" : "absent";
  const weights = needs.split.length;
  const pieces = needs.split.reduce((sum, s) => sum + s.pieces, 0);
  const fit = weights
    ? `${weights} weight${weights === 1 ? "" : "s"} split across storage bindings (${pieces} pieces) to fit a ${needs.bindingLimit}-byte binding limit`
    : needs.bindingLimit ? `no weight split (planned for a ${needs.bindingLimit}-byte binding limit)` : "";
  const shown = [...Object.entries(caps).map(([n, v]) => `${n} ${v}`), ...(forced.absent || []).map((f) => `${f} absent`)];
  return {
    ok: problems.length === 0,
    error: problems.length ? `WebGPU cannot run this model here: ${problems.join("; ")}.` : "",
    notice: `WebGPU: ${fit ? `${fit}; ` : ""}kernels are fp32 (shader-f16: ${f16}).` +
      (shown.length && forced.source ? ` Device forced by ${forced.source}: ${shown.join(", ")}.` : ""),
    limits,
    features,
    forced: shown,
  };
}

/**
 * Fetch a bundle's manifest (`base`: the folder URL, ending in "/") and start fetching its weights:
 * the result's `weightsReady` resolves to them (and sets `weights`), so the models compile while
 * they arrive. `cache`: keep and read the bundle's files in the Cache API (cache.js).
 */
export async function openBundle(base, { fetchImpl = fetch, cache = true } = {}) {
  const url = new URL(base, globalThis.location ? globalThis.location.href : undefined);
  const response = await fetchImpl(new URL("manifest.json", url));
  if (!response.ok) throw new Error(`nnjit: cannot load ${url}manifest.json (HTTP ${response.status})`);
  const manifest = await response.json();
  if (manifest.format !== FORMAT || manifest.version !== FORMAT_VERSION) {
    throw new Error(`nnjit: ${url}manifest.json is not an nnjit bundle of version ${FORMAT_VERSION}`);
  }
  const files = await BundleFiles.open(url, manifest, { fetchImpl, cache });
  const bundle = { url, manifest, files, weights: null };
  bundle.weightsReady = files.bytes(manifest.weights.file).then((weights) => {
    if (weights.byteLength !== manifest.weights.bytes) {
      throw new Error(`nnjit: ${manifest.weights.file} has ${weights.byteLength} bytes, expected ${manifest.weights.bytes}`);
    }
    bundle.weights = weights;
    return weights;
  });
  bundle.weightsReady.catch(() => {}); // reported to whoever awaits it, not as an unhandled rejection
  return bundle;
}

/** `openBundle`, returning once the weights are in. */
export async function loadBundle(base, options = {}) {
  const bundle = await openBundle(base, options);
  await bundle.weightsReady;
  return bundle;
}

// --- WebGPU -------------------------------------------------------------------------------------

/** This page's WebGPU adapter, or a clear error where there is none. */
/**
 * A page's models, one a backend, each created on first use with the schedules this browser kept
 * for the device (IndexedDB, `storedChoices`; looked up before any pipeline is created); `loadMs`
 * says how long creating it took. A creation that failed is forgotten, so the next use tries again.
 */
export class PageModels {
  constructor(bundle, { forced = {} } = {}) {
    this.bundle = bundle;
    this.forced = forced;
    this.pending = {};
  }

  /** The model on `backend`; `options` go to `WasmModel.create` (threads). */
  async get(backend, options = {}) {
    if (!this.pending[backend]) {
      this.pending[backend] = (async () => {
        const started = performance.now();
        const choices = (created) => this.kept(backend, created);
        const created = backend === "webgpu" ? await WebGPUModel.create(this.bundle, { choices, forced: this.forced }) : await WasmModel.create(this.bundle, { ...options, choices });
        created.loadMs = performance.now() - started;
        return created;
      })();
    }
    try {
      return await this.pending[backend];
    } catch (error) {
      delete this.pending[backend];
      throw error;
    }
  }

  /** The model on `backend` if its creation has begun (awaited), else null. */
  async started(backend) {
    return this.pending[backend] ? await this.pending[backend] : null;
  }

  async kept(backend, created) {
    const signatures = backend === "webgpu" ? created.plan.kernels.map((k) => k.signature) : [THREADS_KEY, ...Object.values(created.plan.variants || {}).map((v) => v.signature)];
    const choices = await storedChoices(await created.fingerprint(), backend, this.bundle.manifest.nnjit, signatures);
    created.stored = Object.keys(choices).length;
    return choices;
  }
}

export async function requestAdapter() {
  if (!globalThis.navigator || !navigator.gpu) {
    throw new Error("nnjit: WebGPU is not available here (no navigator.gpu; it needs a secure context such as https or 127.0.0.1)");
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error("nnjit: navigator.gpu offers no adapter");
  return adapter;
}

/** The model's kernels on one WebGPU device. */
export class WebGPUModel extends Model {
  /**
   * Request a device, create every buffer and (asynchronously, in parallel, while the weights
   * arrive) every pipeline. `choices`: kernel signature -> schedule text, or an async function of
   * the model (called before any pipeline exists: it can read the model's `fingerprint()`) that
   * returns them, so a returning visitor compiles only the schedules it kept.
   */
  static async create(bundle, { choices = {}, adapter = null, forced = {} } = {}) {
    const plan = bundle.manifest.webgpu;
    if (!plan) throw new Error("nnjit: this bundle has no WebGPU build");
    adapter = adapter || (await requestAdapter());
    const fit = deviceFit(plan, adapter, forced);
    if (!fit.ok) throw new Error(`nnjit: ${fit.error}`);
    // Every raised limit at the adapter's maximum, which `deviceFit` found at least what the build
    // needs (its `forced` caps only pretend: a device cannot be given less than WebGPU's defaults).
    const requiredLimits = {};
    for (const name of Object.keys(fit.limits)) requiredLimits[name] = adapter.limits[name];
    const timestamps = adapter.features.has("timestamp-query");
    const requiredFeatures = [...((plan.needs && plan.needs.features) || []), ...(timestamps ? ["timestamp-query"] : [])];
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    const model = new WebGPUModel(bundle, adapter, device, timestamps);
    model.fit = fit;
    model.stages.device = performance.now();
    const chosen = typeof choices === "function" ? await choices(model) : choices;
    model.stages.choices = performance.now();
    const mark = (stage) => () => { model.stages[stage] = performance.now(); };
    await Promise.all([model.compile(chosen || {}).then(mark("pipelines")), model.upload().then(mark("weights"))]);
    return model;
  }

  constructor(bundle, adapter, device, timestamps) {
    super();
    this.bundle = bundle;
    this.plan = bundle.manifest.webgpu;
    this.stages = {}; // performance.now() when each part of `create` was done
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
    return this.device.createBuffer({ size: Math.max(4, spec.bytes), usage });
  }

  /** Write the weights into their buffers once they have arrived. */
  async upload() {
    const weights = await bundleWeights(this.bundle);
    this.plan.buffers.forEach((spec, index) => {
      if (!spec.weight) return;
      const [offset, length] = spec.weight;
      this.device.queue.writeBuffer(this.buffers[index], 0, weights, offset, length);
    });
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
    if (!this.texts.has(file)) this.texts.set(file, bundleFiles(this.bundle).text(file));
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
    this.storedChoices = { ...this.storedChoices, ...choices };
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

  /**
   * One inference now; `inputs` maps names to storage typed arrays (or Uint8Array bytes). Call
   * `run` (online.js's Model), which waits for a tuning step in progress first.
   */
  async execute(inputs) {
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

  /** Run the steps before `step` on `inputs`: step `step`'s inputs then hold their true values. */
  async prefix(step, inputs = this.lastInputs) {
    this.write(inputs);
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
    if (this.online) this.online.stop();
    this.buffers.forEach((b) => b.destroy());
    this.device.destroy();
  }
}

