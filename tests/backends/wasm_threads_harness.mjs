// Runs a threaded nnjit Wasm program (build_program(threads=True)) in Node with worker_threads and one
// shared WebAssembly.Memory, through the browser worker's own code (nnjit/runtime/web/wasm_worker.js).
//
//   node [--experimental-wasm-relaxed-simd] wasm_threads_harness.mjs DIR THREADS [REPEATS]
//
// DIR holds program.wasm, plan.json (HostPlan.to_json()), weights.bin (the weight segments in plan
// order) and inputs.bin (the inputs' storage bytes in plan order), as node_runner.mjs takes them.
// THREADS is a comma-separated list of thread counts; 0 means no workers: the exported `run(1)` on
// this thread (the single-threaded runner's way; outputs a later step overwrites are then stale).
// For each count T it writes DIR/outputs-T.bin (the outputs' storage bytes in plan order) and, with
// REPEATS > 0, times REPEATS runs after warm-up; stdout is one JSON line {"seconds": {T: [...]}}.
// NNJIT_SPIN and NNJIT_RUN_SPIN in the environment set the workers' polls before they sleep
// (wasm_worker.js SPIN, RUN_SPIN).

import { readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Worker, isMainThread, parentPort } from "node:worker_threads";
import { CONTROL_WORDS, DONE, FAILED, QUIET, READY, RUN, STOP, serve } from "../../nnjit/runtime/web/wasm_worker.js";

const WARMUP = 3;
const spin = process.env.NNJIT_SPIN ? Number(process.env.NNJIT_SPIN) : undefined; // polls at a barrier
const runSpin = process.env.NNJIT_RUN_SPIN ? Number(process.env.NNJIT_RUN_SPIN) : undefined; // polls for a run

function setUp(dir, plan) {
  const memory = new WebAssembly.Memory({ initial: plan.pages, maximum: plan.pages, shared: true });
  const bytes = new Uint8Array(memory.buffer);
  const weights = readFileSync(`${dir}/weights.bin`);
  let cursor = 0;
  for (const [offset, length] of plan.weights) {
    bytes.set(weights.subarray(cursor, cursor + length), offset);
    cursor += length;
  }
  const inputs = readFileSync(`${dir}/inputs.bin`);
  cursor = 0;
  for (const input of plan.inputs) {
    bytes.set(inputs.subarray(cursor, cursor + 4 * input.count), input.offset);
    cursor += 4 * input.count;
  }
  return memory;
}

function read(memory, plan, outputs, which) {
  const bytes = new Uint8Array(memory.buffer);
  plan.outputs.forEach((output, index) => {
    if (which(output)) outputs[index] = bytes.slice(output.offset, output.offset + 4 * output.count);
  });
}

function joined(outputs) {
  return Buffer.concat(outputs.map((o) => Buffer.from(o.buffer, o.byteOffset, o.length)));
}

/** No workers: `run(1)` on this thread, then every output read from memory. */
async function single(module, plan, dir, repeats) {
  const memory = setUp(dir, plan);
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  instance.exports.run(1);
  const outputs = [];
  read(memory, plan, outputs, () => true);
  const seconds = [];
  // V8 tiers a function up after its calls from JS run out its budget; calls from `run` alone can
  // leave the kernels in baseline code for many runs. One call of each step from JS, as
  // node_runner.mjs's runs do, gets them optimised before timing.
  if (repeats) for (const name of plan.steps) instance.exports[name](0, 1);
  for (let index = 0; index < (repeats ? WARMUP + repeats : 0); index++) {
    const started = performance.now();
    instance.exports.run(1);
    if (index >= WARMUP) seconds.push((performance.now() - started) / 1000);
  }
  return [joined(outputs), seconds];
}

/** `nt` workers running the browser worker's `serve`: one checked run, then `repeats` timed ones. */
async function threaded(module, plan, dir, nt, repeats) {
  const memory = setUp(dir, plan);
  const control = new Int32Array(new SharedArrayBuffer(4 * CONTROL_WORDS));
  const last = plan.steps.length - 1;
  const workers = [];
  const errors = [];
  let done = null;
  const finished = new Promise((resolve) => (done = resolve));
  for (let tid = 0; tid < nt; tid++) {
    const worker = new Worker(new URL(import.meta.url));
    worker.on("message", (message) => {
      if (message.type === "error") errors.push(`worker ${message.tid}: ${message.message}`);
      if (message.type === "done") done(message);
    });
    worker.on("error", (error) => errors.push(`worker ${tid}: ${error.message}`));
    worker.postMessage({ module, memory, plan, tid, nt, control: control.buffer, spin, runSpin });
    workers.push(worker);
  }
  while (Atomics.load(control, READY) < nt) {
    if (errors.length) throw new Error(errors.join("; "));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const outputs = [];
  read(memory, plan, outputs, (o) => o.after < 0);
  Atomics.store(control, FAILED, 0);
  Atomics.add(control, RUN, 1);
  Atomics.notify(control, RUN);
  const message = await finished;
  if (message.failed || errors.length) throw new Error(errors.join("; ") || `worker ${message.failed - 1} trapped`);
  for (const [index, bytes] of message.captures) outputs[index] = bytes;
  read(memory, plan, outputs, (o) => o.after === last);
  // Timed runs: worker 0 posts nothing; this thread sleeps on DONE as a page would on Atomics.waitAsync.
  Atomics.store(control, QUIET, 1);
  const seconds = [];
  for (let index = 0; index < (repeats ? WARMUP + repeats : 0); index++) {
    const started = performance.now();
    const generation = Atomics.add(control, RUN, 1) + 1;
    Atomics.notify(control, RUN);
    for (let seen = Atomics.load(control, DONE); seen !== generation; seen = Atomics.load(control, DONE)) {
      Atomics.wait(control, DONE, seen);
    }
    if (index >= WARMUP) seconds.push((performance.now() - started) / 1000);
  }
  if (Atomics.load(control, FAILED) || errors.length) throw new Error(errors.join("; ") || "a worker trapped");
  Atomics.store(control, STOP, 1);
  Atomics.add(control, RUN, 1);
  Atomics.notify(control, RUN);
  await Promise.all(workers.map((worker) => worker.terminate()));
  return [joined(outputs), seconds];
}

async function main() {
  const [dir, list, repeatsText] = process.argv.slice(2);
  const plan = JSON.parse(readFileSync(`${dir}/plan.json`, "utf8"));
  const module = new WebAssembly.Module(readFileSync(`${dir}/program.wasm`));
  const repeats = Number(repeatsText || 0);
  const seconds = {};
  for (const nt of list.split(",").map(Number)) {
    const [bytes, times] = nt === 0 ? await single(module, plan, dir, repeats) : await threaded(module, plan, dir, nt, repeats);
    writeFileSync(`${dir}/outputs-${nt}.bin`, bytes);
    seconds[nt] = times;
  }
  process.stdout.write(JSON.stringify({ seconds }) + "\n");
}

if (isMainThread) {
  main().catch((error) => {
    process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  });
} else {
  parentPort.once("message", (init) => {
    serve(init, (message) => parentPort.postMessage(message)).catch((error) =>
      parentPort.postMessage({ type: "error", tid: init.tid, message: String(error && error.message ? error.message : error) }),
    );
  });
}
