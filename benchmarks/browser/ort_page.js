// The peer in benchmarks/browser_zoo.py: onnxruntime-web (npm) in the same Chromium as nnjit's page.
// window.ortBench.run({model, ep, threads, feeds, repeats, periodMs}) creates a session on the WebGPU
// or the Wasm execution provider, runs it once (warm-up, outputs returned for the error check), then
// `repeats` times (one due every `periodMs` or when the previous one ends, as nnjit's online loop
// requests them), and returns the ms of each run (session.run: upload, kernels, download, as nnjit's).
//
// Time to first inference (benchmarks/online_jit.py): `ort_page.html?model=M&ep=E&threads=N&feeds=F`
// creates the session and runs the feeds (F: a JSON file of {name: {dtype, shape, data}}) as soon as
// the page loads; `window.ortBench.ttfi` is then { atMs: performance.now() at the first output (ms
// since navigation start), loadMs, firstMs }, as nnjit's page reports its own.

const ort = await import("/ort/ort.all.min.mjs");
ort.env.wasm.wasmPaths = "/ort/";
ort.env.logLevel = "error";

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** Resolve once performance.now() reaches `due` (as nnjit's online.js `until`). */
async function until(due) {
  const early = due - performance.now() - 4;
  if (early > 0) await new Promise((resolve) => setTimeout(resolve, early));
  do {
    await new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => resolve(channel.port1.close());
      channel.port2.postMessage(null);
    });
  } while (performance.now() < due);
}

const ARRAYS = { float32: Float32Array, int64: BigInt64Array, int32: Int32Array, bool: Uint8Array };

function tensors(feeds) {
  const inputs = {};
  for (const [name, { dtype, shape, data }] of Object.entries(feeds)) {
    const bytes = fromBase64(data);
    const Array = ARRAYS[dtype];
    inputs[name] = new ort.Tensor(dtype, new Array(bytes.buffer, 0, bytes.byteLength / Array.BYTES_PER_ELEMENT), shape);
  }
  return inputs;
}

window.ortBench = {
  version: ort.env.versions ? ort.env.versions.web : "?",
  async run({ model, ep, threads, feeds, repeats, periodMs = 0 }) {
    ort.env.wasm.numThreads = threads;
    const created = performance.now();
    const session = await ort.InferenceSession.create(model, { executionProviders: [ep], graphOptimizationLevel: "all" });
    const loadMs = performance.now() - created;
    const inputs = tensors(feeds);
    const started = performance.now();
    const first = await session.run(inputs);
    const firstMs = performance.now() - started;
    const ms = [];
    for (let i = 0, due = performance.now(); i < repeats; i++, due = Math.max(due + periodMs, performance.now())) {
      await until(due);
      const t = performance.now();
      await session.run(inputs);
      ms.push(performance.now() - t);
    }
    const outputs = {};
    for (const [name, tensor] of Object.entries(first)) {
      const data = tensor.data;
      outputs[name] = { dtype: tensor.type, shape: tensor.dims, data: toBase64(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) };
    }
    await session.release();
    return { ms, firstMs, loadMs, outputs, threads: ort.env.wasm.numThreads };
  },
};

async function autorun(params) {
  ort.env.wasm.numThreads = Number(params.get("threads")) || 1;
  const feeds = await (await fetch(params.get("feeds"))).json();
  const created = performance.now();
  const session = await ort.InferenceSession.create(params.get("model"), { executionProviders: [params.get("ep")], graphOptimizationLevel: "all" });
  const loadMs = performance.now() - created;
  const started = performance.now();
  await session.run(tensors(feeds));
  const atMs = performance.now();
  window.ortBench.ttfi = { atMs, loadMs, firstMs: atMs - started };
  await session.release();
}

const params = new URLSearchParams(location.search);
if (params.get("model")) {
  autorun(params).catch((error) => {
    window.ortBench.ttfi = { error: String(error && error.message ? error.message : error) };
  });
}
document.getElementById("status").textContent = `onnxruntime-web ${window.ortBench.version} ready`;
