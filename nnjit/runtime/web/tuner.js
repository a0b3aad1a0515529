// In-page JIT tuning: measure each kernel's variants on this device, keep the fastest correct one.
//
//   const report = await tune(model, { budgetMs: 10000, onProgress });   // model: WebGPUModel | WasmModel
//   report.rows     // per kernel signature: variants measured, default and best time, chosen schedule
//
// The bundle lists each kernel's variants (its compiled schedule first, then its lite space, printed
// by `nnjit export`). Per distinct kernel signature the tuner runs the default variant once in place
// (on the model's real buffers, after a full run of the sample inputs) to get the reference output,
// then each other variant: run, compare with the reference (a variant that changes results is a bug
// and is never chosen), time (median of 5 batches, GPU timestamps when the adapter has them). Kernels
// that cost most are tuned first; when the budget runs out the rest keep their default. A variant
// replaces the default only when it is faster by MARGIN. Winners are kept in IndexedDB keyed by
// device fingerprint, backend, kernel signature and nnjit version, so a reload starts tuned.

const DB_NAME = "nnjit";
const STORE = "schedules";
/** A variant replaces the current best only when it takes at most this fraction of its time. */
export const MARGIN = 0.97;
const RTOL = 1e-3;
const ATOL = 1e-4;
/** Timed batches per measurement (their median counts). */
export const BATCHES = 5;
/** The pseudo kernel signature under which the tuner keeps the Wasm thread-count choice. */
export const THREADS_KEY = "wasm:threads";

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Whether two storage byte arrays hold the same values within the tuner's tolerance. */
export function sameOutput(actual, expected, storage) {
  if (actual.byteLength !== expected.byteLength) return false;
  const view = (b) => (storage === "f32" ? new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) : new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4));
  const a = view(actual);
  const e = view(expected);
  let scale = 1;
  for (let i = 0; i < e.length; i++) if (Number.isFinite(e[i])) scale = Math.max(scale, Math.abs(e[i]));
  for (let i = 0; i < e.length; i++) {
    if (storage !== "f32") {
      if (a[i] !== e[i]) return false;
    } else if (Number.isNaN(e[i])) {
      if (!Number.isNaN(a[i])) return false; // the default computes NaN here (e.g. a fully masked row)
    } else if (!(Math.abs(a[i] - e[i]) <= ATOL * scale + RTOL * Math.abs(e[i]))) {
      return false;
    }
  }
  return true;
}

// --- IndexedDB ----------------------------------------------------------------------------------

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function key(fingerprint, backend, signature, version) {
  return `${fingerprint}|${backend}|${signature}|${version}`;
}

/** Schedules kept for this device and backend: { signature: schedule text }. */
export async function storedChoices(fingerprint, backend, version, signatures) {
  const db = await openDatabase();
  const choices = {};
  await Promise.all(signatures.map((signature) => new Promise((resolve, reject) => {
    const request = db.transaction(STORE).objectStore(STORE).get(key(fingerprint, backend, signature, version));
    request.onsuccess = () => {
      if (request.result && typeof request.result.schedule === "string") choices[signature] = request.result.schedule;
      resolve();
    };
    request.onerror = () => reject(request.error);
  })));
  db.close();
  return choices;
}

export async function storeRows(fingerprint, backend, version, rows) {
  const db = await openDatabase();
  const transaction = db.transaction(STORE, "readwrite");
  for (const row of rows) {
    transaction.objectStore(STORE).put({ schedule: row.chosen, median: row.bestMs, defaultMedian: row.defaultMs,
      measured: row.measured, variants: row.variants, at: Date.now() }, key(fingerprint, backend, row.signature, version));
  }
  await new Promise((resolve, reject) => {
    transaction.oncomplete = resolve;
    transaction.onerror = () => reject(transaction.error);
  });
  db.close();
}

/** Forget every stored schedule (the page's "forget tuning" button and the tests). */
export async function clearStored() {
  const db = await openDatabase();
  const transaction = db.transaction(STORE, "readwrite");
  transaction.objectStore(STORE).clear();
  await new Promise((resolve) => { transaction.oncomplete = resolve; });
  db.close();
}

// --- Per backend: the kernels to tune and how to run / time one variant in place -----------------

function webgpuTargets(model) {
  const plan = model.plan;
  const groups = new Map();
  plan.steps.forEach((step, index) => {
    const kernel = plan.kernels[step.kernel];
    if (kernel.variants.length < 2 || groups.has(kernel.signature)) return;
    groups.set(kernel.signature, {
      signature: kernel.signature, name: kernel.name, template: kernel.template, count: 0,
      variants: kernel.variants.map((v) => v.schedule),
      defaultIndex: kernel.variants.findIndex((v) => v.default),
      storage: kernel.storage,
      async prepare(variant) { return model.stepFor(step, variant); },
      async output(prepared) {
        // Poison the output first (NaN / -1): a variant that skips elements cannot pass the check.
        // Only the kernel's own elements: the rest of a shared slot may be another kernel's input.
        model.device.queue.writeBuffer(model.buffers[step.output], 0, new Uint8Array(4 * kernel.elements).fill(0xff));
        await model.timeStep(prepared, 1);
        return (await model.read(step.output)).slice(0, 4 * kernel.elements);
      },
      async time(prepared) { return model.timeStep(prepared, 8); },
      async choose(variant) { await model.choose(kernel.signature, variant); },
      async prefix() { await model.prefix(index); },
    });
  });
  plan.steps.forEach((step) => {
    const group = groups.get(plan.kernels[step.kernel].signature);
    if (group) group.count += 1;
  });
  return [...groups.values()];
}

function wasmTargets(model) {
  const plan = model.plan;
  const groups = new Map();
  const variants = plan.variants || {};
  plan.steps.forEach((name, index) => {
    const options = variants[index];
    if (!options || options.exports.length < 2 || groups.has(options.signature)) return;
    const region = options.output;
    groups.set(options.signature, {
      signature: options.signature, name: options.kernel, template: options.template, count: 0,
      variants: options.exports.map((e) => e.schedule),
      defaultIndex: 0,
      storage: options.storage,
      async prepare(variant) { return options.exports[variant].name; },
      async prefix() { await model.prefix(index); },
      async output(exported) {
        new Uint8Array(model.memory.buffer).fill(0xff, region[0], region[0] + region[1]);
        model.call(exported);
        return new Uint8Array(model.memory.buffer).slice(region[0], region[0] + region[1]);
      },
      async time(exported) {
        // performance.now() is coarsened (5 µs when cross-origin isolated, 100 µs otherwise): repeat
        // a kernel until a sample spans at least 1 ms.
        let repeats = 1;
        for (;;) {
          const started = performance.now();
          for (let i = 0; i < repeats; i++) model.call(exported);
          const elapsed = performance.now() - started;
          if (elapsed >= 1 || repeats >= 1 << 16) return elapsed / repeats;
          repeats *= elapsed > 0 ? Math.min(16, Math.ceil(1.2 / elapsed)) : 16;
        }
      },
      async choose(variant) {
        plan.steps.forEach((_, step) => {
          const other = variants[step];
          if (other && other.signature === options.signature) model.chosen[step] = other.exports[variant].name;
        });
        await model.restartPool();
      },
    });
  });
  plan.steps.forEach((_, step) => {
    const options = variants[step];
    const group = options && groups.get(options.signature);
    if (group) group.count += 1;
  });
  return [...groups.values()];
}

/** The kernels of `model` (a WebGPUModel or WasmModel) that have variants, one per signature. */
export function targetsOf(model) {
  return model.plan.kernels ? webgpuTargets(model) : wasmTargets(model);
}

// --- The kernel-db service (nnjit kernel-db serve; docs/kernel-db.md) ---------------------------

/** JSON with sorted keys and no spaces: the canonical schedule text of the manifest and the service. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function kebab(name) {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** This device as the service names it: `<backend>-<16 hex>`, with its limits (kebab-case, as wgpu-native's). */
export async function serviceDevice(model, backend) {
  const fingerprint = `${backend}-${(await model.fingerprint()).slice(0, 16)}`;
  const limits = {};
  if (backend === "webgpu") {
    for (const name of ["maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY",
      "maxComputeWorkgroupSizeZ", "maxComputeWorkgroupStorageSize", "maxStorageBufferBindingSize"]) {
      limits[kebab(name)] = Number(model.device.limits[name]);
    }
  } else {
    limits.v128_registers = 16;
  }
  return { fingerprint, backend, limits };
}

async function post(service, path, body) {
  const response = await fetch(new URL(path, service), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`kernel-db service ${path}: ${answer.error || response.status}`);
  return answer;
}

/** The service's offers per signature, as variant indices: this device's records first, then hints. */
export async function sharedOffers(service, device, rows, version) {
  const answer = await post(service, "v1/lookup", { device, signatures: rows.map((r) => r.signature), version });
  const offers = {};
  for (const row of rows) {
    const entries = (answer.results && answer.results[row.signature]) || [];
    const index = (entry) => row.target.variants.indexOf(canonical(entry.schedule));
    // Downloads are untrusted: only schedules this bundle already has as variants are ever run,
    // and each is checked against the default's output and re-measured here before it is used.
    offers[row.signature] = {
      device: entries.filter((e) => e.source === "device").map(index).filter((i) => i >= 0 && i !== row.target.defaultIndex),
      hints: entries.filter((e) => e.source === "hint").map(index).filter((i) => i >= 0 && i !== row.target.defaultIndex),
    };
  }
  return offers;
}

export async function upload(service, device, rows, version) {
  const records = [];
  for (const row of rows) {
    for (const [variant, ms] of Object.entries(row.timings)) {
      records.push({ signature: row.signature, template: row.template, schedule: JSON.parse(row.target.variants[variant]),
        median: ms / 1000, default_median: row.defaultMs / 1000, version });
    }
  }
  for (let i = 0; i < records.length; i += 200) await post(service, "v1/records", { device, records: records.slice(i, i + 200) });
  return records.length;
}

/**
 * Workers or this thread alone: whole runs of the model both ways (small models lose to barriers),
 * after one warm-up run each, alternated so that drift (code tiering up, other load) hits both alike.
 */
export async function tuneThreads(model) {
  const once = async (useThreads) => {
    model.useThreads = useThreads;
    return (await model.execute(model.lastInputs)).ms;
  };
  await once(false);
  await once(true);
  const samples = { alone: [], workers: [] };
  for (let i = 0; i < 2 * BATCHES; i++) {
    samples.alone.push(await once(false));
    samples.workers.push(await once(true));
  }
  const alone = median(samples.alone);
  const workers = median(samples.workers);
  model.useThreads = workers < alone * MARGIN;
  return { signature: THREADS_KEY, kernel: `threads (${model.threads} workers vs 1)`, template: "model", uses: 1, variants: 2,
    measured: 2, rejected: 0, source: "searched", defaultMs: alone, bestMs: Math.min(alone, workers), timings: { 0: alone, 1: workers },
    best: model.useThreads ? 1 : 0, chosen: model.useThreads ? String(model.threads) : "1" };
}

// --- The search ---------------------------------------------------------------------------------

/**
 * Tune `model` (a WebGPUModel or WasmModel that has run its inputs once) within `budgetMs`.
 * With `service` (a kernel-db service URL), kernels whose schedules this device already shared are
 * only re-measured against the default (source "shared"), the rest searched ("searched"), and every
 * correct measurement is uploaded afterwards. Returns { rows, seconds, complete, uploaded }; rows
 * are kept in IndexedDB unless `store` is false.
 */
export async function tune(model, { budgetMs = 10000, onProgress = () => {}, store = true, version = "", service = null } = {}) {
  const started = performance.now();
  const backend = model.plan.kernels ? "webgpu" : "wasm";
  const targets = targetsOf(model);
  const rows = [];
  for (const target of targets) {
    // Kernels read what earlier steps wrote; slots are shared, so recompute those values first.
    await target.prefix();
    const prepared = await target.prepare(target.defaultIndex);
    const samples = [];
    for (let i = 0; i < BATCHES; i++) samples.push(await target.time(prepared));
    const ms = median(samples);
    rows.push({ target, reference: null, signature: target.signature, kernel: target.name, template: target.template,
      uses: target.count, variants: target.variants.length, measured: 1, rejected: 0, source: "searched",
      defaultMs: ms, bestMs: ms, best: target.defaultIndex, chosen: target.variants[target.defaultIndex],
      timings: { [target.defaultIndex]: ms } });
  }
  rows.sort((a, b) => b.defaultMs * b.uses - a.defaultMs * a.uses);
  const device = service ? await serviceDevice(model, backend) : null;
  const offers = service ? await sharedOffers(service, device, rows, version) : {};
  const total = rows.reduce((sum, row) => sum + row.variants - 1, 0);
  let done = 0;
  let complete = true;
  const measure = async (row, variant) => {
    done += 1;
    onProgress({ done, total, kernel: row.kernel });
    let prepared;
    try {
      prepared = await row.target.prepare(variant);
    } catch (error) {
      row.rejected += 1; // a variant this device cannot build scores as infinitely slow
      return;
    }
    const output = await row.target.output(prepared);
    row.measured += 1;
    if (!sameOutput(output, row.reference, row.target.storage)) {
      row.rejected += 1;
      return;
    }
    const samples = [];
    for (let i = 0; i < BATCHES; i++) samples.push(await row.target.time(prepared));
    const ms = median(samples);
    row.timings[variant] = ms;
    if (ms < row.bestMs) {
      row.bestMs = ms;
      row.best = variant;
    }
  };
  for (const row of rows) {
    // The reference again, now: other kernels' runs since phase one have rewritten this one's inputs.
    await row.target.prefix();
    row.reference = await row.target.output(await row.target.prepare(row.target.defaultIndex));
    const offered = offers[row.signature] || { device: [], hints: [] };
    for (const variant of offered.device) await measure(row, variant);
    if (row.best !== row.target.defaultIndex && row.bestMs <= row.defaultMs * MARGIN) {
      row.source = "shared"; // this device's shared record held up here: no search
    } else {
      const order = [...new Set([...offered.hints, ...row.target.variants.keys()])];
      for (const variant of order) {
        if (variant === row.target.defaultIndex || variant in row.timings || offered.device.includes(variant)) continue;
        if (performance.now() - started > budgetMs) {
          complete = false;
          break;
        }
        await measure(row, variant);
      }
    }
    if (row.best !== row.target.defaultIndex && row.bestMs > row.defaultMs * MARGIN) {
      row.best = row.target.defaultIndex;
      row.bestMs = row.defaultMs;
    }
    row.chosen = row.target.variants[row.best];
    await row.target.choose(row.best);
  }
  const uploaded = service ? await upload(service, device, rows, version) : 0;
  if (backend === "wasm") await model.poolReady;
  if (backend === "wasm" && model.pool) rows.push(await tuneThreads(model));
  const clean = rows.map(({ target, reference, timings, ...rest }) => ({ ...rest, speedup: rest.defaultMs / rest.bestMs }));
  if (store && clean.length) await storeRows(await model.fingerprint(), backend, version, clean);
  return { rows: clean, seconds: (performance.now() - started) / 1000, complete, uploaded };
}
