// The peer in benchmarks/browser_zoo.py: onnxruntime-web (npm) in the same Chromium as nnjit's page.
// window.ortBench.run({model, ep, threads, feeds, repeats}) creates a session on the WebGPU or the Wasm
// execution provider, runs it once (warm-up, outputs returned for the error check), then `repeats`
// times, and returns the ms of each run (session.run: upload, kernels, download, as nnjit's run).

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

const ARRAYS = { float32: Float32Array, int64: BigInt64Array, int32: Int32Array, bool: Uint8Array };

window.ortBench = {
  version: ort.env.versions ? ort.env.versions.web : "?",
  async run({ model, ep, threads, feeds, repeats }) {
    ort.env.wasm.numThreads = threads;
    const created = performance.now();
    const session = await ort.InferenceSession.create(model, { executionProviders: [ep], graphOptimizationLevel: "all" });
    const loadMs = performance.now() - created;
    const inputs = {};
    for (const [name, { dtype, shape, data }] of Object.entries(feeds)) {
      const bytes = fromBase64(data);
      const Array = ARRAYS[dtype];
      inputs[name] = new ort.Tensor(dtype, new Array(bytes.buffer, 0, bytes.byteLength / Array.BYTES_PER_ELEMENT), shape);
    }
    const started = performance.now();
    const first = await session.run(inputs);
    const firstMs = performance.now() - started;
    const ms = [];
    for (let i = 0; i < repeats; i++) {
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
document.getElementById("status").textContent = `onnxruntime-web ${window.ortBench.version} ready`;
