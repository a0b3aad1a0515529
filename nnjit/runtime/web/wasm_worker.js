// nnjit's Wasm worker: one thread of a multi-threaded nnjit Wasm program (build_program(threads=True)).
//
// A plain ES module. In a browser, start it with `new Worker(url, {type: "module"})`; Node's test
// harness (tests/backends/wasm_threads_harness.mjs) imports `serve` and the protocol helpers from it.
// Needs cross-origin isolation in browsers (SharedArrayBuffer, shared WebAssembly.Memory).
//
// Start-up. The page compiles the binary once (`WebAssembly.compile`), creates the shared memory
// `new WebAssembly.Memory({initial: plan.pages, maximum: plan.pages, shared: true})`, copies the
// weights in (plan.weights: [offset, length] in order), creates `control` =
// `new SharedArrayBuffer(4 * CONTROL_WORDS)` (zeros) and starts nt workers, posting each one
//
//     {module: WebAssembly.Module, memory: WebAssembly.Memory, plan, tid, nt, control, spin?, runSpin?}
//
// with tid = 0 .. nt - 1 and nt <= plan.max_threads (`plan` is HostPlan.to_json(); optional `spin`
// and `runSpin`: how many times a worker polls at a barrier, and for the next run, before it sleeps
// in Atomics.wait; SPIN and RUN_SPIN by default). The worker instantiates the module with
// {env: {memory}}, adds 1 to control[READY] (Atomics.notify on it) and posts {type: "ready", tid};
// from then on it takes no messages: everything goes through `control`, an Int32Array of
// CONTROL_WORDS words:
//
//     RUN      run generation: the page writes the inputs, stores 0 in FAILED, then
//              Atomics.add(RUN, 1) and Atomics.notify(RUN)
//     DONE     last finished generation: worker 0 stores it, then Atomics.notify(DONE)
//     COUNT    workers arrived at the current barrier
//     BARRIER  barrier generation (bumped by the last worker to arrive)
//     STOP     set it to 1, then bump RUN: every worker returns (and a browser worker closes itself)
//     FAILED   0, or 1 + the tid of the first worker whose kernel trapped in this run
//     READY    workers instantiated
//     QUIET    1: worker 0 does not post "done" messages (the page waits on DONE instead)
//
// A run. Every worker executes the plan's steps in order: a step whose plan.parallel entry is true
// is called by every worker with (tid, nt), the others by worker 0 alone with (0, 1). Between two
// steps the workers meet at a barrier unless neither step is parallel (worker 0 ran both). An output
// whose `after` step is neither the last nor -1 lives in a region a later step overwrites: worker 0
// copies it right after that step (behind a barrier, and before the next one). When all steps are
// done, worker 0 stores the generation in DONE, notifies, and (unless QUIET) posts
//
//     {type: "done", generation, failed, captures: [[outputIndex, Uint8Array], ...]}
//
// The page waits for that message, or with QUIET for DONE to reach the generation
// (`Atomics.waitAsync(control, DONE, generation - 1)`), then reads the outputs with `after` equal to
// the last step or -1 from memory itself, the others from `captures`. A worker whose kernel traps posts {type: "error", tid, generation,
// message}, sets FAILED, skips its remaining calls and keeps meeting the barriers, so the run still
// ends; the page then treats the run as failed.
//
// Barriers poll `spin` times, then sleep in Atomics.wait: a futex wake-up costs tens of microseconds,
// more than most kernels of a small model, while the peers being waited for are busy and arrive
// soon. Between runs a worker polls only `runSpin` times: the page thread that starts the next run
// needs a core too, and workers polling on every core would keep it off them.

export const RUN = 0;
export const DONE = 1;
export const COUNT = 2;
export const BARRIER = 3;
export const STOP = 4;
export const FAILED = 5;
export const READY = 6;
export const QUIET = 7;
export const CONTROL_WORDS = 8;
export const SPIN = 16384;
export const RUN_SPIN = 256;

/** Wait until control[index] differs from `seen`: poll `spin` times, then sleep; returns the new value. */
export function waitChange(control, index, seen, spin = SPIN) {
  for (let polls = 0; polls < spin; polls++) {
    const value = Atomics.load(control, index);
    if (value !== seen) return value;
  }
  for (;;) {
    Atomics.wait(control, index, seen);
    const value = Atomics.load(control, index);
    if (value !== seen) return value;
  }
}

/** Meet the other `nt - 1` workers: returns once all `nt` have called it (a generation barrier). */
export function barrier(control, nt, spin = SPIN) {
  if (nt <= 1) return;
  const generation = Atomics.load(control, BARRIER);
  if (Atomics.add(control, COUNT, 1) === nt - 1) {
    // Last to arrive: reset the count before releasing, so an early leaver's next arrival counts from 0.
    Atomics.store(control, COUNT, 0);
    Atomics.add(control, BARRIER, 1);
    Atomics.notify(control, BARRIER);
  } else {
    waitChange(control, BARRIER, generation, spin);
  }
}

/**
 * What every worker does after each step of `plan` (HostPlan.to_json()): whether the step needs a
 * barrier after it, and which outputs worker 0 captures after it. The same list for every worker.
 */
export function schedule(plan) {
  const steps = plan.steps;
  const parallel = plan.parallel || steps.map(() => false);
  const last = steps.length - 1;
  return steps.map((name, step) => {
    const captures = [];
    plan.outputs.forEach((output, index) => {
      if (output.after === step && step !== last) captures.push(index);
    });
    const next = step < last && parallel[step + 1];
    return {
      name,
      parallel: Boolean(parallel[step]),
      // With captures: all must finish this step before worker 0 copies, and wait for the copy
      // before the next step writes. Otherwise: a barrier unless worker 0 alone ran both steps.
      before: captures.length ? Boolean(parallel[step]) : Boolean(parallel[step] || next),
      captures,
      after: captures.length > 0 && Boolean(next),
      last: step === last,
    };
  });
}

/**
 * One run of every step on this worker. `exports` are the instance's exports. Returns worker 0's
 * captures ([outputIndex, Uint8Array] pairs); `onError(error, name)` is called on a trap.
 */
export function runSteps(exports, memory, plan, actions, tid, nt, control, spin, onError) {
  const captures = [];
  for (const action of actions) {
    const mine = action.parallel || tid === 0;
    if (mine && Atomics.load(control, FAILED) === 0) {
      try {
        if (action.parallel) exports[action.name](tid, nt);
        else exports[action.name](0, 1);
      } catch (error) {
        Atomics.compareExchange(control, FAILED, 0, tid + 1);
        onError(error, action.name);
      }
    }
    if (action.last) {
      if (action.parallel) barrier(control, nt, spin);
      break;
    }
    if (action.before) barrier(control, nt, spin);
    if (tid === 0) {
      const bytes = new Uint8Array(memory.buffer);
      for (const index of action.captures) {
        const output = plan.outputs[index];
        captures.push([index, bytes.slice(output.offset, output.offset + 4 * output.count)]);
      }
    }
    if (action.after) barrier(control, nt, spin);
  }
  return captures;
}

/**
 * The worker: instantiate, report ready, then serve runs until STOP. `init` is the start-up message
 * above; `post` sends a message to the page. Returns when stopped.
 */
export async function serve(init, post) {
  const { module, memory, plan, tid, nt } = init;
  const control = new Int32Array(init.control);
  const spin = init.spin ?? SPIN;
  const runSpin = init.runSpin ?? RUN_SPIN;
  if (!(nt >= 1 && nt <= plan.max_threads && tid >= 0 && tid < nt)) {
    throw new Error(`worker ${tid} of ${nt}: the program runs on 1 to ${plan.max_threads} threads`);
  }
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const actions = schedule(plan);
  // Read the generation before saying ready: the page may start a run as soon as all are ready.
  let seen = Atomics.load(control, RUN);
  Atomics.add(control, READY, 1);
  Atomics.notify(control, READY);
  post({ type: "ready", tid });
  for (;;) {
    seen = waitChange(control, RUN, seen, runSpin);
    if (Atomics.load(control, STOP)) return;
    const generation = seen;
    const onError = (error, name) =>
      post({ type: "error", tid, generation, message: `wasm kernel ${name} trapped: ${error && error.message ? error.message : error}` });
    const captures = runSteps(instance.exports, memory, plan, actions, tid, nt, control, spin, onError);
    if (tid === 0) {
      Atomics.store(control, DONE, generation);
      Atomics.notify(control, DONE);
      if (!Atomics.load(control, QUIET)) {
        post({ type: "done", generation, failed: Atomics.load(control, FAILED), captures });
      }
    }
  }
}

// In a browser worker: the first message starts `serve`; the worker closes itself when stopped.
if (typeof WorkerGlobalScope !== "undefined" && typeof self !== "undefined" && self instanceof WorkerGlobalScope) {
  self.onmessage = (event) => {
    self.onmessage = null;
    serve(event.data, (message) => self.postMessage(message)).then(
      () => self.close(),
      (error) => self.postMessage({ type: "error", tid: event.data && event.data.tid, message: String(error && error.message ? error.message : error) }),
    );
  };
}
