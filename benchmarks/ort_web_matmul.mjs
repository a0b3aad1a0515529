// Times fp32 MatMul models in onnxruntime-web's Wasm backend under Node, for benchmarks/matmul_wasm.py.
//   node ort_web_matmul.mjs <path to onnxruntime-web/dist/ort.node.min.mjs> < jobs.json
// jobs: [{model, m, k, repeats, inner}]; prints [{model, seconds: [per-run seconds], version, threads, simd}].
// One thread (env.wasm.numThreads = 1), SIMD on; each sample is `inner` session.run calls.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";

const ort = await import(pathToFileURL(process.argv[2]).href);
ort.env.wasm.numThreads = 1;
ort.env.wasm.simd = true;
const jobs = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const job of jobs) {
  const session = await ort.InferenceSession.create(readFileSync(job.model), {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const data = new Float32Array(job.m * job.k).map((_, i) => Math.sin(i));
  const feeds = { x: new ort.Tensor("float32", data, [job.m, job.k]) };
  const first = await session.run(feeds);
  const seconds = [];
  for (let r = 0; r < 2 + job.repeats; r++) {
    const started = performance.now();
    for (let i = 0; i < job.inner; i++) await session.run(feeds);
    if (r >= 2) seconds.push((performance.now() - started) / 1000 / job.inner);
  }
  results.push({ model: job.model, seconds, checksum: first.y.data.slice(0, 4).reduce((a, b) => a + b, 0) });
  await session.release();
}
console.log(JSON.stringify({ version: ort.env.versions?.web ?? "?", threads: ort.env.wasm.numThreads, results }));
