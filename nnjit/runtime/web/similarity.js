// The sentence-similarity page (`nnjit export --app sentence-similarity`, nnjit/runtime/apps.py): type
// sentences, pick a backend, compare; the page embeds them with the exported model and shows their
// cosine similarities as a heat map, and the latency.
//
// app.json (written at export) says how: the model's compiled [batch, sequence] shape, its embedding
// output and whether to average it over the tokens (mean pooling). Sentences are tokenized here by
// wordpiece.js with the model's tokenizer.json, truncated and padded to `sequence` tokens, and run
// `batch` at a time; the last run's empty rows are blank sentences whose embeddings are dropped.
// Everything the visitor types and everything the model provides is shown with textContent, never
// parsed as markup; colours are set through the CSSOM, which the site's CSP allows.
//
// `window.nnjitSimilarity` drives the same code from scripts: `ready`, `compare(backend, sentences)`.

import { PageModels, fromStorage, loadBundle, toStorage } from "./nnjit.js";
import { WordPieceTokenizer } from "./wordpiece.js";

const $ = (id) => document.getElementById(id);
let models = null; // PageModels (the schedules model.html tuned and kept, same origin), once the bundle is open
let config = null;
let bundle = null;
let tokenizer = null;

function setState(state) {
  document.body.dataset.state = state;
}

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function notice(text) {
  $("notice").hidden = !text;
  $("notice").textContent = text || "";
}

function element(parent, tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  parent.appendChild(node);
  return node;
}

async function fetchJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load ${url} (HTTP ${response.status})`);
  return response.json();
}

/** The sentences in the text box: one a line, surrounding blanks and empty lines dropped. */
export function sentencesOf(text) {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line.length > 0);
}

/** Row `row` of the output as one embedding: as it is, or averaged over the row's unmasked tokens. */
function pool(values, row, mask, hidden) {
  const vector = new Float64Array(hidden);
  if (config.pooling === "none") {
    for (let h = 0; h < hidden; h++) vector[h] = values[row * hidden + h];
    return vector;
  }
  let count = 0;
  for (let t = 0; t < config.sequence; t++) {
    if (!mask[row * config.sequence + t]) continue;
    count += 1;
    const base = (row * config.sequence + t) * hidden;
    for (let h = 0; h < hidden; h++) vector[h] += values[base + h];
  }
  for (let h = 0; h < hidden; h++) vector[h] /= Math.max(count, 1);
  return vector;
}

function unit(vector) {
  let norm = 0;
  for (const v of vector) norm += v * v;
  norm = Math.sqrt(norm) || 1;
  return vector.map((v) => v / norm);
}

/** Unit embeddings of `sentences`, `batch` a run, and what it took. */
async function embed(m, sentences) {
  const { batch, sequence } = config;
  const spec = bundle.manifest.outputs.find((s) => s.name === config.output);
  const hidden = spec.shape[spec.shape.length - 1];
  const vectors = [];
  let tokenizeMs = 0;
  let modelMs = 0;
  let runs = 0;
  for (let start = 0; start < sentences.length; start += batch) {
    const chunk = sentences.slice(start, start + batch);
    const began = performance.now();
    const rows = chunk.concat(new Array(batch - chunk.length).fill(""));
    const encoded = tokenizer.encodeBatch(rows, { maxLength: sequence, padTo: sequence });
    const inputs = {};
    for (const input of bundle.manifest.inputs) inputs[input.name] = toStorage(input, encoded[input.name]);
    tokenizeMs += performance.now() - began;
    const result = await m.run(inputs);
    modelMs += result.ms;
    runs += 1;
    const values = fromStorage(spec, result.outputs[spec.name]);
    for (let r = 0; r < chunk.length; r++) vectors.push(unit(pool(values, r, encoded.attention_mask, hidden)));
  }
  return { vectors, tokenizeMs, modelMs, runs };
}

function dot(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/** Embed `sentences` on `backend`: the cosine similarity matrix, token counts and timings. */
async function compare(backend, sentences) {
  if (!Array.isArray(sentences) || sentences.length < 2) throw new Error("Type at least two sentences, one per line.");
  if (sentences.length > config.maxSentences) {
    throw new Error(`At most ${config.maxSentences} sentences at once (got ${sentences.length}).`);
  }
  const started = performance.now();
  const fresh = !models.pending[backend];
  const m = await models.get(backend);
  const embedded = await embed(m, sentences);
  const matrix = embedded.vectors.map((a) => embedded.vectors.map((b) => dot(a, b)));
  const tokens = sentences.map((s) => tokenizer.tokenize(s).length + 2);
  return {
    matrix, tokens, backend, sentences, runs: embedded.runs, tokenizeMs: embedded.tokenizeMs, modelMs: embedded.modelMs,
    totalMs: performance.now() - started - (fresh ? m.loadMs : 0), loadMs: fresh ? m.loadMs : null,
    description: m.describe(), message: m.message || "", stored: m.stored || 0,
  };
}

// Blues: near-white at 0 (and below), mid blue at 0.5, dark blue at 1.
const STOPS = [[247, 251, 255], [107, 174, 214], [8, 48, 107]];

/** The heat map colour of a similarity, and whether text on it should be light. */
export function colour(value) {
  const t = Math.min(1, Math.max(0, value)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(t));
  const rgb = STOPS[i].map((c, k) => Math.round(c + (STOPS[i + 1][k] - c) * (t - i)));
  return { css: `rgb(${rgb.join(", ")})`, dark: value > 0.55 };
}

function showMatrix(result) {
  const { matrix, sentences, tokens } = result;
  const head = $("heatmap").tHead;
  head.replaceChildren();
  const top = element(head, "tr");
  element(top, "th", "sentence");
  sentences.forEach((_, j) => element(top, "th", String(j + 1), "column"));
  const body = $("heatmap").tBodies[0];
  body.replaceChildren();
  sentences.forEach((sentence, i) => {
    const row = element(body, "tr");
    const label = element(row, "th", `${i + 1}. ${sentence} `, "sentence");
    label.title = sentence;
    const truncated = tokens[i] > config.sequence;
    element(label, "span", truncated ? `(truncated to ${config.sequence} tokens)` : `(${tokens[i]} tokens)`,
      truncated ? "tokens truncated" : "tokens");
    matrix[i].forEach((value, j) => {
      const { css, dark } = colour(value);
      const cell = element(row, "td", value.toFixed(3), dark ? "score dark" : "score");
      cell.style.backgroundColor = css;
      cell.dataset.value = String(value);
      cell.title = `${i + 1} vs ${j + 1}: ${value.toFixed(6)}`;
    });
  });
  let best = null;
  let worst = null;
  for (let i = 0; i < matrix.length; i++) {
    for (let j = i + 1; j < matrix.length; j++) {
      if (!best || matrix[i][j] > best[2]) best = [i, j, matrix[i][j]];
      if (!worst || matrix[i][j] < worst[2]) worst = [i, j, matrix[i][j]];
    }
  }
  $("closest").textContent = `Most similar: ${best[0] + 1} and ${best[1] + 1} (${best[2].toFixed(3)}); ` +
    `least similar: ${worst[0] + 1} and ${worst[1] + 1} (${worst[2].toFixed(3)}).`;
  $("result").hidden = false;
}

function showLatency(result) {
  const row = document.createElement("tr");
  const cells = [
    [result.backend], [result.description], [String(result.sentences.length), "num"],
    [`${result.runs} × [${config.batch}, ${config.sequence}]`, "num"], [result.tokenizeMs.toFixed(1), "num"],
    [result.modelMs.toFixed(1), "num"], [result.totalMs.toFixed(1), "num"],
    [result.loadMs === null ? "—" : result.loadMs.toFixed(0), "num"],
  ];
  for (const [text, className] of cells) element(row, "td", text, className);
  $("latency").tBodies[0].prepend(row);
}

async function onCompare() {
  const backend = $("backend").value;
  $("compare").disabled = true;
  setState("running");
  setStatus(`Embedding on ${backend}…`);
  try {
    const result = await compare(backend, sentencesOf($("sentences").value));
    showMatrix(result);
    showLatency(result);
    notice(result.message);
    const tuned = result.stored ? ` (${result.stored} schedules tuned on this device)` : "";
    setStatus(`Compared ${result.sentences.length} sentences on ${result.description}${tuned} in ${result.totalMs.toFixed(0)} ms.`);
    setState("done");
  } catch (error) {
    setStatus(String(error && error.message ? error.message : error), true);
    setState("error");
  } finally {
    $("compare").disabled = false;
  }
}

async function start() {
  config = await fetchJSON(new URL("app.json", location.href));
  const [loaded, vocabulary] = await Promise.all([
    loadBundle(new URL("model/", location.href)),
    fetchJSON(new URL(config.tokenizer, location.href)),
  ]);
  bundle = loaded;
  models = new PageModels(bundle);
  tokenizer = WordPieceTokenizer.fromJSON(vocabulary);
  document.title = `nnjit · ${config.title} · sentence similarity`;
  $("title").textContent = config.title;
  $("model-info").textContent = `${config.output} of [${config.batch} sentences, ${config.sequence} tokens] a run; ` +
    `longer sentences are truncated to ${config.sequence} tokens (WordPiece, ${tokenizer.vocab.size} pieces)`;
  $("sentences").value = config.examples.join("\n");
  for (const option of $("backend").options) option.disabled = !bundle.manifest[option.value];
  if (!globalThis.navigator || !navigator.gpu) $("backend").options[0].disabled = true;
  if ($("backend").selectedOptions[0].disabled) $("backend").value = "wasm";
  $("compare").addEventListener("click", onCompare);
  $("compare").disabled = false;
  setStatus("Ready: edit the sentences and press Compare.");
  setState("ready");
}

const ready = start();
ready.catch((error) => {
  setStatus(`Cannot load the model: ${error.message}`, true);
  setState("error");
});

window.nnjitSimilarity = {
  ready: ready.then(() => true),
  compare: async (backend, sentences) => {
    await ready;
    return compare(backend, sentences);
  },
};
