// Tensors as the runtime moves them: 4-byte storage (f32, i32 for i32/i64, u32/i32 0/1 for booleans),
// and the checks every backend makes on inputs. Shared by nnjit.js (WebGPU) and wasm.js.

/** A tensor of the model's dtype as its storage typed array (int64 must fit int32). */
export function toStorage(spec, values) {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`input '${spec.name}': expected ${count} elements, got ${values.length}`);
  if (spec.storage === "f32") return Float32Array.from(values, Number);
  const out = spec.storage === "u32" ? new Uint32Array(count) : new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = Number(values[i]);
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
      throw new Error(`input '${spec.name}': value ${values[i]} does not fit the runtime's 32-bit integers`);
    }
    out[i] = spec.dtype === "bool" ? (v ? 1 : 0) : v;
  }
  return out;
}

/** The typed array view of raw storage bytes. */
export function fromStorage(spec, bytes) {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return spec.storage === "f32" ? new Float32Array(buffer) : spec.storage === "u32" ? new Uint32Array(buffer) : new Int32Array(buffer);
}

/** The bytes of one input (a storage typed array or Uint8Array), checked against its spec's size. */
export function storageOf(input, data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const expected = 4 * input.shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== expected) {
    throw new Error(`input '${input.name}': expected ${expected} bytes of ${input.storage} storage, got ${bytes.byteLength}`);
  }
  return bytes;
}

/** Throw unless `inputs` names exactly the model's inputs. */
export function checkInputs(specs, inputs) {
  const names = specs.map((s) => s.name);
  const given = Object.keys(inputs);
  if (given.length !== names.length || names.some((n) => !(n in inputs))) {
    throw new Error(`the model takes inputs [${names.join(", ")}]; got [${given.join(", ")}]`);
  }
}

/** SHA-256 hex of a string (the key of device fingerprints). */
export async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
