// A bundle's files, kept in the Cache API under the bundle's content hash, so a returning visitor
// reads weights, Wasm binaries and WGSL from local storage instead of the network.
//
//   const files = await BundleFiles.open(url, manifest);   // manifest.content: the hash `nnjit export` wrote
//   const module = await WebAssembly.compileStreaming(files.response("model.relaxed.wasm"));
//   const weights = await files.bytes("weights.bin");
//   files.stats()   // { cached, hits, misses, fromCache }: fromCache when nothing came from the network
//
// The manifest itself always comes from the network (the server says `no-cache`): it names the
// content hash, so a new export of the bundle is a new cache and never mixes with the old one. The
// cache of an older content at the same bundle URL is deleted; other bundles' caches stay. Responses
// keep their headers, so `compileStreaming` works on a cached `.wasm` (and Chromium keeps V8's
// compiled code next to Cache API responses of modules large enough to be worth it). Without the
// Cache API (no secure context, storage off) or without `content` in the manifest, files come from
// the network and `cached` is false.

const PREFIX = "nnjit-bundle";

export async function fetchBytes(url, fetchImpl = fetch) {
  const response = await fetchImpl(url);
  if (!response.ok) throw new Error(`nnjit: cannot load ${url} (HTTP ${response.status})`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The cache names this bundle URL owns: `nnjit-bundle <url> <content>`. */
function cacheName(url, content) {
  return `${PREFIX} ${url.href} ${content}`;
}

/** Where a bundle's files come from: the Cache API (by content hash) or the network. */
export class BundleFiles {
  static async open(url, manifest, { fetchImpl = fetch, cache = true } = {}) {
    let store = null;
    if (cache && typeof manifest.content === "string" && globalThis.caches) {
      try {
        const name = cacheName(url, manifest.content);
        store = await caches.open(name);
        for (const other of await caches.keys()) {
          if (other !== name && other.startsWith(cacheName(url, ""))) await caches.delete(other);
        }
      } catch {
        store = null; // storage is off here (e.g. a sandboxed frame): the network it is
      }
    }
    return new BundleFiles(url, store, fetchImpl);
  }

  constructor(url, store = null, fetchImpl = fetch) {
    this.url = url;
    this.store = store;
    this.fetch = (url) => fetchImpl(url); // called as a function: `fetch` must not see this object as its receiver
    this.hits = 0;
    this.misses = 0;
    this.sources = {}; // file -> "cache" | "network"
  }

  /** The Response of one file of the bundle (a path relative to its folder). */
  async response(file) {
    const url = new URL(file, this.url);
    if (this.store) {
      const cached = await this.store.match(url);
      if (cached) {
        this.hits += 1;
        this.sources[file] = "cache";
        return cached;
      }
    }
    const response = await this.fetch(url);
    if (!response.ok) throw new Error(`nnjit: cannot load ${url} (HTTP ${response.status})`);
    this.misses += 1;
    this.sources[file] = "network";
    // Stored while the caller reads the other copy; a put that fails (quota) only costs the next visit.
    if (this.store) this.store.put(url, response.clone()).catch(() => {});
    return response;
  }

  async bytes(file) {
    return new Uint8Array(await (await this.response(file)).arrayBuffer());
  }

  async text(file) {
    return (await this.response(file)).text();
  }

  /** Where this visit's files came from. */
  stats() {
    const cached = Boolean(this.store);
    return { cached, hits: this.hits, misses: this.misses, fromCache: cached && this.hits > 0 && this.misses === 0, sources: { ...this.sources } };
  }
}

/** Forget every bundle kept in the Cache API (the page's "forget" button and the tests). */
export async function clearCachedBundles() {
  if (!globalThis.caches) return;
  for (const name of await caches.keys()) if (name.startsWith(`${PREFIX} `)) await caches.delete(name);
}

/** A bundle's weights: `openBundle` starts fetching them and resolves `weightsReady`. */
export async function bundleWeights(bundle) {
  return bundle.weights || bundle.weightsReady;
}

/** A bundle's files (a bundle object made without `openBundle` reads them from the network). */
export function bundleFiles(bundle) {
  if (!bundle.files) bundle.files = new BundleFiles(bundle.url);
  return bundle.files;
}
