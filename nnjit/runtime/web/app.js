// The exported page: pick a backend, run the model on its sample inputs, see latency, outputs and the
// difference from the oracle's outputs, tune on this device, or let it tune online between runs.
// Everything the model provides (title, tensor names) is shown with textContent, never parsed as
// markup.
//
// `window.nnjitPage` is the same page driven from Python (nnjit/runtime/chromium.py): tensors travel
// as base64 of their 4-byte storage. Query parameters: `?backend=webgpu|wasm&autorun=1` runs the
// sample as soon as the page loads (its time to first inference is `nnjitPage.ttfi()`), `&online=1`
// then tunes online (`&budget=S` seconds). `?max-binding=BYTES` makes the page treat the adapter's
// maxStorageBufferBindingSize as at most BYTES and `?no-f16=1` its shader-f16 as absent, so the
// weak-device checks and messages can be reached (and tested) on any adapter (docs/browser.md).

import { PageModels, clearCachedBundles, deviceFit, fromStorage, openBundle, requestAdapter } from "./nnjit.js";
import { until } from "./online.js";
import { clearStored, tune } from "./tuner.js";

const $ = (id) => document.getElementById(id);
let models = null; // PageModels, once the bundle is open
const firstOutput = {}; // backend -> { atMs (performance.now(), i.e. since navigation), ... }
const params = new URLSearchParams(location.search);
const timeline = { appStart: performance.now() };
let bundle = null;
let sample = null;
let device = null; // deviceFit of this page's adapter (null without WebGPU)
const notices = new Map(); // where a notice comes from ("device", a backend) -> {text, error}
const forced = forcedDevice();

/** The adapter as `?max-binding=BYTES&no-f16=1` pretends it is (see the top of this file). */
function forcedDevice() {
  const limits = {};
  const absent = [];
  const given = [];
  const binding = Number(params.get("max-binding"));
  if (params.has("max-binding") && Number.isInteger(binding) && binding > 0) {
    limits.maxStorageBufferBindingSize = binding;
    given.push(`max-binding=${binding}`);
  }
  if (params.get("no-f16")) {
    absent.push("shader-f16");
    given.push("no-f16=1");
  }
  return { limits, absent, source: given.length ? `the page's ?${given.join("&")}` : "" };
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

/** One line of the notice area per source: the device check and each backend's last message. */
function notice(source, text, error = false) {
  if (text) notices.set(source, { text, error });
  else notices.delete(source);
  const lines = [...notices.values()].map((line) => {
    const p = document.createElement("p");
    p.textContent = line.text;
    if (line.error) p.className = "error";
    return p;
  });
  $("notice").replaceChildren(...lines);
  $("notice").hidden = lines.length === 0;
}

/** This page's adapter checked against what the WebGPU build needs (`deviceFit`), before any device exists. */
async function checkDevice() {
  try {
    return deviceFit(bundle.manifest.webgpu, await requestAdapter(), forced);
  } catch (error) {
    return { ok: false, error: String(error && error.message ? error.message : error), notice: "", limits: {}, features: [], forced: [] };
  }
}

/** The device check in the notice area: how the build fits, or which limit falls short (WebGPU then not offered). */
function showDevice(fit) {
  const instead = bundle.manifest.wasm ? " Wasm SIMD runs it (pick it above)." : "";
  notice("device", fit.ok ? fit.notice : fit.error + instead, !fit.ok);
  if (fit.ok) return;
  for (const option of $("backend").options) if (option.value === "webgpu") option.disabled = true;
  if ($("backend").value === "webgpu" && bundle.manifest.wasm) $("backend").value = "wasm";
}

export function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

async function loadSample() {
  const spec = bundle.manifest.sample;
  if (!spec) return null;
  const bytes = await bundle.files.bytes(spec.file);
  const pick = (index) => Object.fromEntries(Object.entries(index || {}).map(([name, [offset, length]]) => [name, bytes.slice(offset, offset + length)]));
  return { inputs: pick(spec.inputs), expected: spec.expected ? pick(spec.expected) : null };
}

function maxDiff(spec, actual, expected) {
  const a = fromStorage(spec, actual);
  const e = fromStorage(spec, expected);
  let worst = 0;
  for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(a[i] - e[i]));
  return worst;
}

/**
 * Run `repeats` times; returns base64 outputs of the last run, per-run ms and the difference from the
 * oracle. Wasm waits for its workers unless `eager` (the first inference of `autorun`).
 */
async function run(backend, { inputs = null, repeats = 1, threads = null, eager = false } = {}) {
  const m = await models.get(backend, { threads });
  if (m.poolReady && !eager) await m.poolReady;
  const given = inputs ? Object.fromEntries(Object.entries(inputs).map(([n, b]) => [n, fromBase64(b)])) : sample.inputs;
  const ms = [];
  const waits = [];
  let result = null;
  for (let i = 0; i < Math.max(1, repeats); i++) {
    result = await m.run(given);
    if (!firstOutput[backend]) {
      firstOutput[backend] = { atMs: performance.now(), ms: result.ms, cache: bundle.files.stats(), stored: m.stored || 0, stages: { ...m.stages } };
    }
    ms.push(result.ms);
    waits.push(result.waitMs);
  }
  const diffs = {};
  if (!inputs && sample.expected) {
    for (const spec of bundle.manifest.outputs) diffs[spec.name] = maxDiff(spec, result.outputs[spec.name], sample.expected[spec.name]);
  }
  const outputs = Object.fromEntries(Object.entries(result.outputs).map(([n, b]) => [n, toBase64(b)]));
  return { outputs, ms, waits, diffs, description: m.describe(), message: m.message || "", loadMs: m.loadMs, stored: m.stored, threads: backend === "wasm" ? m.activeThreads : null, raw: result.outputs };
}

function showRun(backend, result) {
  const sorted = [...result.ms].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1];
  const row = document.createElement("tr");
  cell(row, backend);
  cell(row, result.description);
  cell(row, String(result.ms.length), "num");
  cell(row, median.toFixed(2), "num");
  cell(row, sorted[0].toFixed(2), "num");
  cell(row, result.ms[0].toFixed(2), "num");
  $("latency").tBodies[0].prepend(row);
  const body = $("outputs").tBodies[0];
  body.replaceChildren();
  for (const spec of bundle.manifest.outputs) {
    const values = fromStorage(spec, result.raw[spec.name]);
    const tr = document.createElement("tr");
    cell(tr, spec.name);
    cell(tr, `[${spec.shape.join(", ")}] ${spec.dtype}`);
    cell(tr, Array.from(values.subarray(0, 8), (v) => (spec.storage === "f32" ? v.toFixed(4) : String(v))).join(", "), "values");
    cell(tr, spec.name in result.diffs ? result.diffs[spec.name].toExponential(2) : "—", "num");
    body.appendChild(tr);
  }
  notice(backend, result.message);
}

function showTuning(report) {
  const body = $("tuning").tBodies[0];
  body.replaceChildren();
  for (const row of report.rows) {
    const tr = document.createElement("tr");
    cell(tr, row.kernel);
    cell(tr, row.template);
    cell(tr, String(row.uses), "num");
    cell(tr, String(row.variants), "num");
    cell(tr, String(row.measured), "num");
    cell(tr, String(row.rejected), "num");
    cell(tr, (row.defaultMs * 1000).toFixed(1), "num");
    cell(tr, (row.bestMs * 1000).toFixed(1), "num");
    cell(tr, `${row.speedup.toFixed(2)}×`, "num");
    body.appendChild(tr);
  }
  const measured = report.rows.reduce((s, r) => s + r.measured, 0);
  const shared = report.rows.filter((r) => r.source === "shared").length;
  $("tuning-summary").textContent = `Tuned ${report.rows.length} kernels (${measured} variants measured) in ${report.seconds.toFixed(1)} s${report.complete ? "" : " (budget reached)"}` +
    (shared ? `; ${shared} from the kernel-db service` : "") + (report.uploaded ? `; ${report.uploaded} measurements shared` : "") + ".";
}

async function tuneBackend(backend, { budgetSeconds = 10, service = null } = {}) {
  const m = await models.get(backend);
  await m.stopOnline(); // the whole search now, not between runs
  await m.run(sample.inputs); // the kernels' buffers then hold realistic values
  const report = await tune(m, {
    budgetMs: budgetSeconds * 1000,
    version: bundle.manifest.nnjit,
    service: service || params.get("service"),
    onProgress: ({ done, total, kernel }) => setStatus(`Tuning ${backend}: variant ${done} of ${total} (${kernel})…`),
  });
  showTuning(report);
  return report;
}

// --- Online JIT (online.js) ---------------------------------------------------------------------

function showOnline(status) {
  const swaps = status.swaps.length;
  $("online-summary").textContent = `Online on ${status.backend}: ${status.tuned} of ${status.kernels} kernels tuned` +
    (status.skipped ? ` (${status.skipped} kept from an earlier visit)` : "") +
    `, ${status.measured} variants measured in ${status.steps} steps (longest ${status.maxStepMs.toFixed(0)} ms), ` +
    `${swaps} swap${swaps === 1 ? "" : "s"}` + (status.error ? `; stopped: ${status.error}` : status.running ? "…" : status.complete ? "; done." : "; stopped.");
  const body = $("swaps").tBodies[0];
  body.replaceChildren();
  for (const swap of status.swaps) {
    const tr = document.createElement("tr");
    cell(tr, (swap.t / 1000).toFixed(2), "num");
    cell(tr, swap.kernel);
    cell(tr, (swap.fromMs * 1000).toFixed(1), "num");
    cell(tr, (swap.toMs * 1000).toFixed(1), "num");
    cell(tr, `${swap.speedup.toFixed(2)}×`, "num");
    body.appendChild(tr);
  }
}

/** Start tuning `backend` between inferences (after one inference: steps measure on its inputs). */
async function startOnline(backend, { budgetSeconds = 120, service = null } = {}) {
  const m = await models.get(backend);
  if (m.online && (m.online.running || m.online.complete)) return m.online;
  if (!m.lastInputs) await m.run(sample.inputs);
  const online = m.startOnline({
    budgetMs: budgetSeconds * 1000, version: bundle.manifest.nnjit, service: service || params.get("service"),
    onProgress: showOnline, onSwap: () => showOnline(m.online.status()),
  });
  showOnline(online.status());
  return online;
}

function sameOutputs(a, b) {
  return Object.keys(a).every((name) => a[name].length === b[name].length && a[name].every((v, i) => v === b[name][i]));
}

/**
 * Inferences for `seconds` (or until `untilMs` since navigation), one due every `periodMs` or as soon
 * as the previous one answered when that is later (0: back to back), while
 * the tuner works between them. Returns every run ({requestedAt, ms, waitMs, stepsBefore, output}:
 * times in ms since navigation, `output` an index into `outputs`, the distinct outputs in base64),
 * the tuner's status and swaps.
 */
async function runOnline(backend, { seconds = 10, untilMs = null, inputs = null, periodMs = 0, budgetSeconds = 120, service = null } = {}) {
  const m = await models.get(backend);
  const given = inputs ? Object.fromEntries(Object.entries(inputs).map(([n, b]) => [n, fromBase64(b)])) : sample.inputs;
  const online = await startOnline(backend, { budgetSeconds, service });
  const distinct = [];
  const runs = [];
  const startedAt = performance.now();
  const end = untilMs === null ? startedAt + seconds * 1000 : untilMs;
  // A request's wait counts from when it was due: a tuning step that held the thread (Wasm steps
  // run synchronously) delays the request itself, not only its start.
  for (let due = startedAt; due < end; due = Math.max(due + periodMs, performance.now())) {
    await until(due);
    const result = await m.run(given);
    let output = distinct.findIndex((known) => sameOutputs(known, result.outputs));
    if (output < 0) output = distinct.push(result.outputs) - 1;
    runs.push({ requestedAt: due, ms: result.ms, waitMs: result.startedAt - due, stepsBefore: result.stepsBefore, output });
  }
  const outputs = distinct.map((o) => Object.fromEntries(Object.entries(o).map(([n, b]) => [n, toBase64(b)])));
  return { runs, outputs, startedAt, status: online.status(), description: m.describe(), threads: backend === "wasm" ? m.activeThreads : null };
}

/** The online tuner's status on `backend`, after waiting up to `waitSeconds` for it to finish. */
async function onlineStatus(backend, { waitSeconds = 0 } = {}) {
  const m = models && (await models.started(backend));
  if (!m || !m.online) return null;
  if (waitSeconds > 0) await Promise.race([m.online.done, new Promise((resolve) => setTimeout(resolve, waitSeconds * 1000))]);
  return m.online.status();
}

/** Time to first inference: when each backend's first output was there (ms since navigation start). */
function ttfi() {
  return { autorun: params.get("autorun") ? params.get("backend") : null, timeline: { ...timeline }, first: { ...firstOutput } };
}

function showFirst(backend) {
  const first = firstOutput[backend];
  const cache = first.cache.fromCache ? "bundle from the Cache API" : first.cache.cached ? "bundle from the network, now cached" : "bundle from the network";
  $("ttfi").textContent = `First ${backend} inference ${first.atMs.toFixed(0)} ms after navigation (${cache}` +
    (first.stored ? `, ${first.stored} tuned schedules from IndexedDB` : "") + ").";
}

async function guarded(action) {
  for (const id of ["run", "tune", "forget", "online-start"]) $(id).disabled = true;
  try {
    await action();
  } catch (error) {
    setStatus(String(error && error.message ? error.message : error), true);
  } finally {
    for (const id of ["run", "tune", "forget", "online-start"]) $(id).disabled = false;
  }
}

/** `?autorun=1&backend=B`: the sample's inference as soon as the page loads (then `&online=1`: tune online). */
async function autorun(backend) {
  $("backend").value = backend;
  setStatus(`Running on ${backend}…`);
  const result = await run(backend, { eager: true });
  showRun(backend, result);
  showFirst(backend);
  setStatus(`Ran on ${result.description}.`);
  if (params.get("online")) await startOnline(backend, { budgetSeconds: Number(params.get("budget")) || 120 });
}

async function start() {
  bundle = await openBundle(new URL("model/", location.href));
  models = new PageModels(bundle, { forced });
  timeline.manifest = performance.now();
  const manifest = bundle.manifest;
  const auto = params.get("autorun") ? params.get("backend") || (manifest.webgpu ? "webgpu" : "wasm") : null;
  const creating = auto ? models.get(auto) : null; // while the sample arrives
  const checking = manifest.webgpu ? checkDevice() : null; // likewise
  sample = await loadSample();
  timeline.sample = performance.now();
  document.title = `nnjit · ${manifest.title}`;
  $("title").textContent = manifest.title;
  const describe = (specs) => specs.map((s) => `${s.name} [${s.shape.join("×")}] ${s.dtype}`).join(", ");
  $("model-info").textContent = `inputs: ${describe(manifest.inputs)} → outputs: ${describe(manifest.outputs)}`;
  for (const option of $("backend").options) option.disabled = !manifest[option.value];
  if (!manifest.webgpu) $("backend").value = "wasm";
  device = await checking;
  if (device) showDevice(device);
  $("run").addEventListener("click", () => guarded(async () => {
    const backend = $("backend").value;
    setStatus(`Running on ${backend}…`);
    const result = await run(backend, { repeats: Number($("repeats").value) || 1 });
    showRun(backend, result);
    showFirst(backend);
    setStatus(`Ran on ${result.description}.`);
  }));
  $("tune").addEventListener("click", () => guarded(async () => {
    const backend = $("backend").value;
    const report = await tuneBackend(backend, { budgetSeconds: Number($("budget").value) || 10 });
    setStatus(`Tuned ${backend} in ${report.seconds.toFixed(1)} s; run again to see the new latency.`);
  }));
  $("online-start").addEventListener("click", () => guarded(async () => {
    const backend = $("backend").value;
    await startOnline(backend, { budgetSeconds: Number($("budget").value) || 10 });
    setStatus(`Tuning ${backend} online: runs go first, each waits for at most one tuning step.`);
  }));
  $("forget").addEventListener("click", () => guarded(async () => {
    await clearStored();
    await clearCachedBundles();
    setStatus("Forgot the tuned schedules and the cached bundle kept in this browser (reload to start from the defaults).");
  }));
  for (const id of ["run", "tune", "forget", "online-start"]) $(id).disabled = !sample;
  setStatus(sample ? "Ready." : "Ready (this bundle has no sample inputs).");
  if (auto && sample) {
    await creating;
    timeline.model = performance.now();
    await autorun(auto);
  }
}

const ready = start();
ready.catch((error) => setStatus(`Cannot load the model: ${error.message}`, true));

window.nnjitPage = {
  ready: ready.then(() => true),
  manifest: () => bundle.manifest,
  device: async () => {
    await ready;
    return device;
  },
  run: async (backend, options = {}) => {
    await ready;
    const result = await run(backend, options);
    showRun(backend, result);
    setStatus(`Ran on ${result.description}.`);
    delete result.raw;
    return result;
  },
  tune: async (backend, options = {}) => {
    await ready;
    const report = await tuneBackend(backend, options);
    setStatus(`Tuned ${backend} in ${report.seconds.toFixed(1)} s.`);
    return report;
  },
  runOnline: async (backend, options = {}) => {
    await ready;
    return runOnline(backend, options);
  },
  online: (backend, options = {}) => onlineStatus(backend, options),
  stopOnline: async (backend) => {
    const m = models && (await models.started(backend));
    if (m) await m.stopOnline();
  },
  ttfi,
  forget: async () => {
    await clearStored();
    await clearCachedBundles();
  },
};
