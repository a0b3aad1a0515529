// nnjit's Node runner: executes nnjit Wasm programs (binary + host plan) in V8 for the Python driver
// (nnjit/runtime/wasm_node.py). One process serves many requests, one at a time.
//
// Frames on stdin and stdout: [u32 LE header length][header JSON][u32 LE payload length][payload].
// Requests (header.cmd) and their payloads:
//   probe  payload: a Wasm binary             -> {valid}: whether this V8 accepts it (relaxed SIMD probe)
//   load   {key, plan, binary, poison}        payload: binary then the weight bytes in plan order
//   run    {key}                              payload: the inputs' storage bytes in plan order
//                                             -> payload: the outputs' storage bytes in plan order
//   time   {key, repeats, inner, warmup}      -> {seconds}: per run(inner) / inner, performance.now()
//   dump   {key}                              -> payload: the whole linear memory
//   unload {key}
// Every reply has {ok: true, ...} or {ok: false, error}.

import { stdin, stdout } from "node:process";
import { performance } from "node:perf_hooks";

const programs = new Map();

function reply(header, payload = new Uint8Array(0)) {
  const head = Buffer.from(JSON.stringify(header), "utf8");
  const frame = Buffer.alloc(8 + head.length + payload.length);
  frame.writeUInt32LE(head.length, 0);
  head.copy(frame, 4);
  frame.writeUInt32LE(payload.length, 4 + head.length);
  Buffer.from(payload.buffer, payload.byteOffset, payload.length).copy(frame, 8 + head.length);
  stdout.write(frame);
}

function bytesOf(memory) {
  return new Uint8Array(memory.buffer);
}

function load(header, payload) {
  const plan = header.plan;
  const binary = payload.subarray(0, header.binary);
  let module;
  try {
    module = new WebAssembly.Module(binary);
  } catch (error) {
    throw new Error(`V8 rejects the module: ${error.message}`);
  }
  let instance;
  try {
    instance = new WebAssembly.Instance(module, {});
  } catch (error) {
    throw new Error(`V8 cannot instantiate the module (${plan.pages} pages of linear memory): ${error.message}`);
  }
  const memory = instance.exports.memory;
  if (header.poison !== null && header.poison !== undefined) {
    new Uint32Array(memory.buffer).fill(header.poison >>> 0);
  }
  const bytes = bytesOf(memory);
  let cursor = header.binary;
  for (const [offset, length] of plan.weights) {
    bytes.set(payload.subarray(cursor, cursor + length), offset);
    cursor += length;
  }
  programs.set(header.key, { plan, instance, memory });
  return {};
}

function program(key) {
  const found = programs.get(key);
  if (!found) throw new Error(`no program loaded under key ${key}`);
  return found;
}

function call(instance, name, ...args) {
  try {
    instance.exports[name](...args);
  } catch (error) {
    throw new Error(`wasm kernel ${name} trapped in V8: ${error.message}`);
  }
}

function run(header, payload) {
  const { plan, instance, memory } = program(header.key);
  const bytes = bytesOf(memory);
  let cursor = 0;
  for (const input of plan.inputs) {
    const length = 4 * input.count;
    bytes.set(payload.subarray(cursor, cursor + length), input.offset);
    cursor += length;
  }
  const outputs = plan.outputs.map(() => null);
  const read = (step) => {
    plan.outputs.forEach((output, index) => {
      if (output.after === step) outputs[index] = bytes.slice(output.offset, output.offset + 4 * output.count);
    });
  };
  read(-1);
  plan.steps.forEach((name, step) => {
    call(instance, name);
    read(step);
  });
  const total = outputs.reduce((sum, o) => sum + o.length, 0);
  const joined = new Uint8Array(total);
  let at = 0;
  for (const o of outputs) {
    joined.set(o, at);
    at += o.length;
  }
  return [{}, joined];
}

function time(header) {
  const { instance } = program(header.key);
  const seconds = [];
  for (let index = 0; index < header.warmup + header.repeats; index++) {
    const started = performance.now();
    call(instance, "run", header.inner);
    const elapsed = (performance.now() - started) / 1000 / header.inner;
    if (index >= header.warmup) seconds.push(elapsed);
  }
  return { seconds };
}

function handle(header, payload) {
  switch (header.cmd) {
    case "probe":
      return [{ valid: WebAssembly.validate(payload), v8: process.versions.v8 }];
    case "load":
      return [load(header, payload)];
    case "run":
      return run(header, payload);
    case "time":
      return [time(header)];
    case "dump":
      return [{}, bytesOf(program(header.key).memory).slice()];
    case "unload":
      programs.delete(header.key);
      return [{}];
    default:
      throw new Error(`unknown command ${header.cmd}`);
  }
}

let pending = Buffer.alloc(0);

stdin.on("data", (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  for (;;) {
    if (pending.length < 4) return;
    const headLength = pending.readUInt32LE(0);
    if (pending.length < 8 + headLength) return;
    const payloadLength = pending.readUInt32LE(4 + headLength);
    const end = 8 + headLength + payloadLength;
    if (pending.length < end) return;
    const header = JSON.parse(pending.subarray(4, 4 + headLength).toString("utf8"));
    const payload = new Uint8Array(pending.buffer, pending.byteOffset + 8 + headLength, payloadLength);
    let answer;
    try {
      const [result, data] = handle(header, payload);
      answer = [{ ok: true, ...result }, data];
    } catch (error) {
      answer = [{ ok: false, error: String(error && error.message ? error.message : error) }];
    }
    pending = pending.subarray(end);
    reply(answer[0], answer[1]);
  }
});

stdin.on("end", () => process.exit(0));
