// The exported page: pick a backend, run the model on its sample inputs, see latency, outputs and the
// difference from the oracle's outputs, tune on this device. Everything the model provides (title,
// tensor names) is shown with textContent, never parsed as markup.
//
// `window.nnjitPage` is the same page driven from Python (nnjit/runtime/chromium.py): tensors travel
// as base64 of their 4-byte storage.

import { THREADS_KEY, WasmModel, WebGPUModel, fetchBytes, fromStorage, loadBundle } from "./nnjit.js";
import { clearStored, storedChoices, tune } from "./tuner.js";

const $ = (id) => document.getElementById(id);
const models = {};
let bundle = null;
let sample = null;

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

function notice(text) {
  $("notice").hidden = !text;
  $("notice").textContent = text || "";
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
  const bytes = await fetchBytes(new URL(spec.file, bundle.url));
  const pick = (index) => Object.fromEntries(Object.entries(index || {}).map(([name, [offset, length]]) => [name, bytes.slice(offset, offset + length)]));
  return { inputs: pick(spec.inputs), expected: spec.expected ? pick(spec.expected) : null };
}

/** The model on `backend`, created once (with the schedules IndexedDB kept for this device). */
async function model(backend, options = {}) {
  if (!models[backend]) {
    models[backend] = (async () => {
      const started = performance.now();
      const created = backend === "webgpu" ? await WebGPUModel.create(bundle) : await WasmModel.create(bundle, options);
      const signatures = backend === "webgpu" ? created.plan.kernels.map((k) => k.signature) : [THREADS_KEY, ...Object.values(created.plan.variants || {}).map((v) => v.signature)];
      const choices = await storedChoices(await created.fingerprint(), backend, bundle.manifest.nnjit, signatures);
      if (Object.keys(choices).length) {
        if (backend === "webgpu") await created.compile(choices);
        else created.applyChoices(choices);
      }
      created.stored = Object.keys(choices).length;
      created.loadMs = performance.now() - started;
      return created;
    })();
  }
  try {
    return await models[backend];
  } catch (error) {
    delete models[backend];
    throw error;
  }
}

function maxDiff(spec, actual, expected) {
  const a = fromStorage(spec, actual);
  const e = fromStorage(spec, expected);
  let worst = 0;
  for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(a[i] - e[i]));
  return worst;
}

/** Run `repeats` times; returns base64 outputs of the last run, per-run ms and the difference from the oracle. */
async function run(backend, { inputs = null, repeats = 1, threads = null } = {}) {
  const m = await model(backend, { threads });
  const given = inputs ? Object.fromEntries(Object.entries(inputs).map(([n, b]) => [n, fromBase64(b)])) : sample.inputs;
  const ms = [];
  let result = null;
  for (let i = 0; i < Math.max(1, repeats); i++) {
    result = await m.run(given);
    ms.push(result.ms);
  }
  const diffs = {};
  if (!inputs && sample.expected) {
    for (const spec of bundle.manifest.outputs) diffs[spec.name] = maxDiff(spec, result.outputs[spec.name], sample.expected[spec.name]);
  }
  const outputs = Object.fromEntries(Object.entries(result.outputs).map(([n, b]) => [n, toBase64(b)]));
  return { outputs, ms, diffs, description: m.describe(), message: m.message || "", loadMs: m.loadMs, stored: m.stored, threads: backend === "wasm" ? m.activeThreads : null, raw: result.outputs };
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
  notice(result.message);
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
  const m = await model(backend);
  await m.run(sample.inputs); // the kernels' buffers then hold realistic values
  const report = await tune(m, {
    budgetMs: budgetSeconds * 1000,
    version: bundle.manifest.nnjit,
    service: service || new URLSearchParams(location.search).get("service"),
    onProgress: ({ done, total, kernel }) => setStatus(`Tuning ${backend}: variant ${done} of ${total} (${kernel})…`),
  });
  showTuning(report);
  return report;
}

async function guarded(action) {
  for (const id of ["run", "tune", "forget"]) $(id).disabled = true;
  try {
    await action();
  } catch (error) {
    setStatus(String(error && error.message ? error.message : error), true);
  } finally {
    for (const id of ["run", "tune", "forget"]) $(id).disabled = false;
  }
}

async function start() {
  bundle = await loadBundle(new URL("model/", location.href));
  sample = await loadSample();
  const manifest = bundle.manifest;
  document.title = `nnjit · ${manifest.title}`;
  $("title").textContent = manifest.title;
  const describe = (specs) => specs.map((s) => `${s.name} [${s.shape.join("×")}] ${s.dtype}`).join(", ");
  $("model-info").textContent = `inputs: ${describe(manifest.inputs)} → outputs: ${describe(manifest.outputs)}`;
  for (const option of $("backend").options) option.disabled = !manifest[option.value];
  if (!manifest.webgpu) $("backend").value = "wasm";
  $("run").addEventListener("click", () => guarded(async () => {
    const backend = $("backend").value;
    setStatus(`Running on ${backend}…`);
    const result = await run(backend, { repeats: Number($("repeats").value) || 1 });
    showRun(backend, result);
    setStatus(`Ran on ${result.description}.`);
  }));
  $("tune").addEventListener("click", () => guarded(async () => {
    const backend = $("backend").value;
    const report = await tuneBackend(backend, { budgetSeconds: Number($("budget").value) || 10 });
    setStatus(`Tuned ${backend} in ${report.seconds.toFixed(1)} s; run again to see the new latency.`);
  }));
  $("forget").addEventListener("click", () => guarded(async () => {
    await clearStored();
    setStatus("Forgot the tuned schedules kept in this browser (reload to start from the defaults).");
  }));
  for (const id of ["run", "tune", "forget"]) $(id).disabled = !sample;
  setStatus(sample ? "Ready." : "Ready (this bundle has no sample inputs).");
}

const ready = start();
ready.catch((error) => setStatus(`Cannot load the model: ${error.message}`, true));

window.nnjitPage = {
  ready: ready.then(() => true),
  manifest: () => bundle.manifest,
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
  forget: () => clearStored(),
};
