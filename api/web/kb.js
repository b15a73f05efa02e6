// The kb page: ask, search, browse and upload through the /v1 routes, nothing else.
// The API key the user types is kept in sessionStorage (this tab, until it closes) and sent
// as `Authorization: Bearer <key>` on every request.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "kb.key";
const PAGE_SIZE = 20;
let key = sessionStorage.getItem(KEY) || "";
let offset = 0;

// Errors as sentences --------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

async function failure(response) {
  let type = "", message = "";
  try {
    const body = await response.json();
    type = body.error.type;
    message = body.error.message;
  } catch (_) {
    message = response.statusText;
  }
  return new ApiError(response.status, type, message);
}

const STATUS_TYPES = {
  400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
  408: "request_timeout", 413: "too_large", 415: "unsupported_type", 429: "rate_limited",
  502: "upstream_error", 503: "unavailable", 504: "upstream_timeout",
};

function sentence(text) {
  text = String(text || "").trim();
  if (!text) return "";
  text = text[0].toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : text + ".";
}

function count(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function bytes(n) {
  const short = (x) => x.toFixed(x < 10 ? 1 : 0).replace(/\.0$/, "");
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${short(n / 1024)} KB`;
  return `${short(n / 1024 / 1024)} MB`;
}

// What went wrong, said to a person; `subject` names what was sent ("notes.pdf", "your question").
function explain(err, subject) {
  if (!(err instanceof ApiError)) {
    return "The server could not be reached. Check that kb is running, then try again.";
  }
  const type = err.type || STATUS_TYPES[err.status] || "";
  const detail = sentence(err.message);
  const what = subject || "The request";
  switch (type) {
    case "unauthorized":
      return "That API key was not accepted. Enter a valid key to go on.";
    case "too_large": {
      const limit = /limit of (\d+) bytes/.exec(err.message || "");
      return `${what} is too large for this server` +
        (limit ? `: it takes at most ${bytes(Number(limit[1]))} per upload.` : ".");
    }
    case "unsupported_type":
      return `${what} is not a kind of file kb reads (PDF, text, Markdown or an image).`;
    case "invalid_request":
      return `The server could not accept ${subject || "the request"}. ${detail}`;
    case "not_found":
      return "That document is not in the knowledge base (it may have been deleted).";
    case "forbidden":
      return `The server refused this request. ${detail}`;
    case "request_timeout":
      return `${what} took too long to arrive. Try again.`;
    case "rate_limited":
      return `Claude is busy right now. ${detail}`;
    case "unavailable":
      return "The knowledge base's store cannot be reached right now. Try again shortly.";
    case "upstream_timeout":
      return "Anthropic did not answer in time. Try again.";
    case "upstream_error":
    case "upstream_auth_error":
    case "upstream_rejected":
    case "upstream_not_found":
      return `Anthropic could not answer (error ${err.status || 502}). ${detail}`;
    default:
      return `Something went wrong on the server (error ${err.status || 500}). Try again.`;
  }
}

function showError(err, subject) {
  if (err instanceof ApiError && (err.type === "unauthorized" || err.status === 401)) {
    askForKey(key ? "That API key was not accepted. Enter a valid key to go on." : "");
  }
  $("error-text").textContent = explain(err, subject);
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

// Requests ----------------------------------------------------------------------------------

function headers(extra) {
  const h = Object.assign({}, extra);
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function api(path, options) {
  const opts = Object.assign({}, options);
  opts.headers = headers(opts.headers);
  let response;
  try {
    response = await fetch(path, opts);
  } catch (_) {
    throw new Error("network");
  }
  if (!response.ok) throw await failure(response);
  return response;
}

async function json(path, options) {
  return (await api(path, options)).json();
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) {
      node.setAttribute(name, value === true ? "" : value);
    }
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function where(c) {
  if (c.page_start != null) {
    return c.page_start === c.page_end ? `p. ${c.page_start}` : `pp. ${c.page_start}–${c.page_end}`;
  }
  if (c.char_start != null) return `chars ${c.char_start}–${c.char_end}`;
  return "";
}

// The original file: fetched with the key, shown by the browser from a blob URL, at `page`.
function originalLink(docId, page, label) {
  const href = `/v1/documents/${encodeURIComponent(docId)}/original` + (page ? `#page=${page}` : "");
  return el("a", {
    href, target: "_blank", rel: "noopener", class: "original", text: label,
    onclick: (event) => { event.preventDefault(); openOriginal(docId, page); },
  });
}

async function openOriginal(docId, page) {
  const tab = window.open("", "_blank"); // opened now, while the click still counts
  try {
    const response = await api(`/v1/documents/${encodeURIComponent(docId)}/original`);
    const url = URL.createObjectURL(await response.blob());
    setTimeout(() => URL.revokeObjectURL(url), 10 * 60 * 1000);
    if (tab) tab.location.href = page ? `${url}#page=${page}` : url;
  } catch (err) {
    if (tab) tab.close();
    showError(err);
  }
}

// Keys ----------------------------------------------------------------------------------------

function askForKey(why) {
  $("key-panel").hidden = false;
  $("key-error").textContent = why || "";
  $("key").focus();
}

async function probe() {
  try {
    await api("/v1/documents?limit=1");
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
    throw err;
  }
}

async function useKey(event) {
  event.preventDefault();
  key = $("key").value.trim();
  $("key-error").textContent = "";
  try {
    if (!(await probe())) {
      key = "";
      $("key-error").textContent = "That API key was not accepted. Check it and try again.";
      return;
    }
  } catch (err) {
    key = "";
    $("key-error").textContent = explain(err);
    return;
  }
  sessionStorage.setItem(KEY, key);
  $("key").value = "";
  $("key-panel").hidden = true;
  $("forget-key").hidden = false;
  clearError();
  show();
}

function forgetKey() {
  sessionStorage.removeItem(KEY);
  key = "";
  $("forget-key").hidden = true;
  askForKey("");
}

// Ask ---------------------------------------------------------------------------------------

let citations = [];

function appendText(text) {
  $("answer").append(document.createTextNode(text));
}

// A numbered mark for citation `n`: in place of a literal "[n]" in the answer when there is
// one (the offline answer numbers its sentences), else where the answer has got to.
function placeMark(n, mark) {
  const literal = `[${n}]`;
  for (const node of $("answer").childNodes) {
    if (node.nodeType !== Node.TEXT_NODE) continue;
    const at = node.data.indexOf(literal);
    if (at < 0) continue;
    const rest = node.splitText(at);
    rest.data = rest.data.slice(literal.length);
    rest.before(mark);
    return;
  }
  $("answer").append(mark);
}

function addCitation(c) {
  citations.push(c);
  const n = citations.length;
  const place = where(c);
  const mark = el("button", {
    type: "button", class: "cite", "aria-expanded": "false", "aria-controls": "cite-detail",
    title: `${c.title}${place ? ", " + place : ""}: ${c.cited_text}`,
    "aria-label": `Citation ${n}: ${c.title}${place ? ", " + place : ""}`,
    "data-n": String(n),
    text: String(n),
    onclick: () => showCitation(n, mark),
  });
  placeMark(n, mark);
}

function showCitation(n, mark) {
  const c = citations[n - 1];
  const box = $("cite-detail");
  const open = mark.getAttribute("aria-expanded") === "true";
  for (const m of document.querySelectorAll(".cite")) m.setAttribute("aria-expanded", "false");
  if (open) {
    box.hidden = true;
    return;
  }
  mark.setAttribute("aria-expanded", "true");
  const place = where(c);
  box.replaceChildren(
    el("p", { class: "cite-title" }, el("strong", { text: `[${n}] ${c.title}` }),
      place ? document.createTextNode(` · ${place}`) : null),
    el("blockquote", { text: c.cited_text }),
    originalLink(c.document_id, c.page_start, place ? `Open the original at ${place}` : "Open the original"),
  );
  box.hidden = false;
}

function money(usd) {
  return usd == null ? "unknown" : `$${usd < 0.01 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

function showSources(done) {
  const box = $("sources");
  const docs = done.documents || [];
  if (done.answered_by !== "claude") {
    $("ask-notice").textContent = done.notice || "No model was called.";
    $("ask-notice").hidden = false;
    box.replaceChildren(
      el("h3", { text: "Where these passages come from" }),
      el("p", { text: "Nothing was sent to a model: these documents were only searched." }),
      el("ul", {}, ...docs.map((d) => el("li", { text: d.title }))),
    );
    return;
  }
  const u = done.usage;
  box.replaceChildren(
    el("h3", { text: "Sent to Claude" }),
    el("p", {
      text: `${count(docs.length, "document")}, ${count(done.pages_sent, "page")}, ` +
        `about ${done.estimated_input_tokens} input ` +
        `tokens, estimated cost ${money(done.estimated_cost_usd)} (model ${done.model}).`,
    }),
    el("ul", {}, ...docs.map((d) => el("li", {},
      el("strong", { text: d.title }),
      document.createTextNode(
        (d.pages ? ` · pp. ${d.page_start}–${d.page_end} (${d.pages} pages)` : "") +
        ` · about ${d.estimated_tokens} tokens`),
    ))),
    el("p", {
      class: "usage",
      text: `Used ${u.input_tokens} input and ${u.output_tokens} output tokens ` +
        `(${u.cache_read_tokens} read from cache, ${u.cache_write_tokens} written to it), ` +
        `cost ${money(u.cost_usd)}. Retrieval ${Math.round(done.timings.retrieve_ms)} ms, ` +
        `answer ${Math.round(done.timings.model_ms)} ms.`,
    }),
  );
}

function handleEvent(name, data, state) {
  if (name === "delta") appendText(data.text);
  else if (name === "citation") addCitation(data);
  else if (name === "done") {
    state.done = true;
    showSources(data);
    $("ask-status").textContent = data.answered_by === "claude"
      ? "Answered by Claude." : "No model was called.";
  } else if (name === "error") {
    state.done = true;
    $("ask-status").textContent = "";
    showError(new ApiError(0, data.error.type, data.error.message), "your question");
  }
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  clearError();
  citations = [];
  $("answer").replaceChildren();
  $("sources").replaceChildren();
  $("cite-detail").hidden = true;
  $("ask-notice").hidden = true;
  $("ask-status").textContent = "Asking…";
  $("ask-button").disabled = true;
  const state = { done: false };
  try {
    const response = await api("/v1/ask/stream", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ question }),
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = (buffer + value).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) handleEvent(name, JSON.parse(data.join("\n")), state);
      }
    }
    if (!state.done) throw new Error("the answer stream ended early");
  } catch (err) {
    $("ask-status").textContent = "";
    showError(err, "your question");
  } finally {
    $("ask-button").disabled = false;
  }
}

// Search ------------------------------------------------------------------------------------

async function search(event) {
  event.preventDefault();
  clearError();
  const params = new URLSearchParams({ q: $("q").value.trim() });
  if ($("mode").value) params.set("mode", $("mode").value);
  $("search-status").textContent = "Searching…";
  try {
    const body = await json(`/v1/search?${params}`);
    $("search-status").textContent =
      `${count(body.results.length, "document")} ` +
      `(${body.mode}, ${Math.round(body.retrieve_ms)} ms).`;
    $("results").replaceChildren(...body.results.map((hit) => el("li", {},
      el("h3", {}, document.createTextNode(hit.document.title),
        el("span", { class: "meta", text: ` ${hit.document.kind} · score ${hit.score.toFixed(3)}` })),
      el("ul", { class: "passages" }, ...hit.chunks.map((c) => {
        const page = hit.document.kind === "pdf" ? c.page_start : null;
        const span = page ? (c.page_start === c.page_end
          ? `p. ${c.page_start}` : `pp. ${c.page_start}–${c.page_end}`) : `chars ${c.char_start}–${c.char_end}`;
        return el("li", {},
          el("span", { class: "meta", text: `${span} · ${c.score.toFixed(3)} ` }),
          originalLink(hit.document.id, page, "open"),
          el("p", { text: c.text.length > 400 ? c.text.slice(0, 400) + "…" : c.text }));
      })),
    )));
  } catch (err) {
    $("search-status").textContent = "";
    showError(err, "your search");
  }
}

// Documents ---------------------------------------------------------------------------------

async function listDocuments(note) {
  const params = new URLSearchParams({ offset: String(offset), limit: String(PAGE_SIZE) });
  if ($("name").value.trim()) params.set("name", $("name").value.trim());
  if ($("kind").value) params.set("kind", $("kind").value);
  try {
    const body = await json(`/v1/documents?${params}`);
    if (body.total && offset >= body.total) { // the last page emptied by a delete
      offset = Math.max(0, (Math.ceil(body.total / PAGE_SIZE) - 1) * PAGE_SIZE);
      return listDocuments(note);
    }
    const first = body.total ? offset + 1 : 0;
    $("docs-status").textContent = (note ? note + " " : "") + (body.total
      ? `Documents ${first}–${offset + body.documents.length} of ${body.total}.`
      : "No documents.");
    $("prev").disabled = offset === 0;
    $("next").disabled = offset + body.documents.length >= body.total;
    $("doc-list").replaceChildren(...body.documents.map((d) => el("li", { "data-id": d.id },
      el("button", { type: "button", class: "link title", text: d.title, onclick: () => showDocument(d.id) }),
      el("span", {
        class: "meta",
        text: ` ${d.kind} · ${d.kind === "pdf" ? count(d.page_count, "page") + " · " : ""}` +
          `${count(d.chunk_count, "chunk")} · ${bytes(d.size_bytes)}`,
      }),
      el("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete ${d.title}`, onclick: () => remove(d) }),
    )));
  } catch (err) {
    showError(err);
  }
}

function row(label, value) {
  return [el("dt", { text: label }), el("dd", {}, typeof value === "string" ? document.createTextNode(value) : value)];
}

async function showDocument(id) {
  clearError();
  try {
    const d = await json(`/v1/documents/${encodeURIComponent(id)}`);
    const box = $("doc-detail");
    box.replaceChildren(
      el("h3", { id: "detail-title", text: d.title }),
      el("dl", {},
        ...row("Kind", `${d.kind} (${d.mime_type})${d.encrypted ? ", encrypted" : ""}`),
        ...row("Size", bytes(d.size_bytes)),
        ...row("Pages", String(d.page_count)),
        ...row("Chunks", String(d.chunk_count)),
        ...row("Sources", el("ul", {}, ...d.sources.map((s) => el("li", { text: s })))),
        ...row("Stored files", d.file_ids.length
          ? el("ul", {}, ...d.file_ids.map((f) => el("li", { text: `${f} (${d.file_store})` })))
          : "none yet"),
        ...row("Notes", d.notes.length ? el("ul", {}, ...d.notes.map((n) => el("li", { text: n }))) : "none"),
        ...row("Added", d.created_at),
        ...row("Id", d.id),
      ),
      el("p", { class: "row" },
        originalLink(d.id, d.kind === "pdf" ? 1 : null, "Open the original"),
        el("button", { type: "button", class: "danger", text: "Delete", onclick: () => remove(d) }),
        el("button", { type: "button", text: "Close", onclick: () => { box.hidden = true; } })),
    );
    box.hidden = false;
    box.focus();
  } catch (err) {
    showError(err);
  }
}

function confirmDelete(doc) {
  const dialog = $("confirm");
  $("confirm-text").textContent =
    `Delete “${doc.title}”? Its chunks, its record and its stored files go; this cannot be undone.`;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function remove(doc) {
  if (!(await confirmDelete(doc))) return;
  clearError();
  try {
    await api(`/v1/documents/${encodeURIComponent(doc.id)}`, { method: "DELETE" });
    $("doc-detail").hidden = true;
    await listDocuments(`Deleted ${doc.title}.`);
  } catch (err) {
    showError(err);
  }
}

// One request per file: its own progress, its own status, and one file over the limit does
// not stop the others.
function uploadOne(file, status, progress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/documents");
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = e.loaded / e.total;
    });
    xhr.addEventListener("load", () => {
      progress.value = 1;
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { body = null; }
      if (xhr.status === 200 && body && body.results.length) {
        const r = body.results[0];
        const counts = r.chunks ? ` (${count(r.pages, "page")}, ${count(r.chunks, "chunk")})` : "";
        status.textContent = r.label + counts;
        status.className = r.status === "failed" || r.status === "skipped" ? "bad" : "good";
      } else {
        const err = new ApiError(xhr.status, body && body.error ? body.error.type : "",
          body && body.error ? body.error.message : xhr.statusText);
        if (xhr.status === 401) showError(err);
        status.textContent = explain(err, file.name);
        status.className = "bad";
      }
      resolve();
    });
    xhr.addEventListener("error", () => {
      status.textContent = explain(new Error("network"), file.name);
      status.className = "bad";
      resolve();
    });
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

async function upload(files) {
  clearError();
  const jobs = [...files].map((file) => {
    const status = el("span", { class: "pending", text: "uploading…" });
    const progress = el("progress", { max: "1", value: "0", "aria-label": `Upload of ${file.name}` });
    $("uploads").append(el("li", {}, el("strong", { text: file.name }),
      el("span", { class: "meta", text: ` ${bytes(file.size)} ` }), progress, document.createTextNode(" "), status));
    return [file, status, progress];
  });
  for (const [file, status, progress] of jobs) await uploadOne(file, status, progress);
  $("files").value = "";
  await listDocuments();
}

// Tabs and start ----------------------------------------------------------------------------

const TABS = ["ask", "search", "documents"];

function show() {
  const tab = TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "ask";
  for (const name of TABS) {
    $(name).hidden = name !== tab;
    if (name === tab) $(`tab-${name}`).setAttribute("aria-current", "page");
    else $(`tab-${name}`).removeAttribute("aria-current");
  }
  if (tab === "documents" && $("key-panel").hidden) listDocuments();
}

function start() {
  $("key-form").addEventListener("submit", useKey);
  $("forget-key").addEventListener("click", forgetKey);
  $("error-close").addEventListener("click", clearError);
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("ask-form").requestSubmit();
  });
  $("search-form").addEventListener("submit", search);
  $("filter-form").addEventListener("submit", (e) => { e.preventDefault(); offset = 0; listDocuments(); });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE_SIZE); listDocuments(); });
  $("next").addEventListener("click", () => { offset += PAGE_SIZE; listDocuments(); });
  $("files").addEventListener("change", () => upload($("files").files));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("cite-detail").hidden) {
      $("cite-detail").hidden = true;
      for (const m of document.querySelectorAll(".cite[aria-expanded=true]")) {
        m.setAttribute("aria-expanded", "false");
        m.focus();
      }
    }
  });
  window.addEventListener("hashchange", show);
  $("forget-key").hidden = !key;
  probe().then((ok) => {
    if (!ok) {
      askForKey(key ? "That API key was not accepted. Enter a valid key to go on." : "");
      sessionStorage.removeItem(KEY);
      key = "";
    }
    show();
    document.body.dataset.ready = "true";
  }, (err) => {
    showError(err);
    show();
    document.body.dataset.ready = "true";
  });
}

start();
