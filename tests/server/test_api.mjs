// gemma4c serve, driven with the official openai client (and raw fetch where the client cannot send the request).
// The model has random weights: answers are gibberish, so these tests check the protocol, determinism, usage
// counts, streaming format, limits and errors, not content.
//   G4C_URL      a running server (started by run_tests.sh with --api-key, --queue 2, --max-body 1,
//                --allow-local-files G4C_LOCAL_DIR)
//   G4C_API_KEY  its key;  G4C_BIN, G4C_MODEL  to start extra servers (timeouts, --parallel)
import OpenAI from "openai";
import { writeFileSync, existsSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { makePng, dataUrl, startServer, stopServer, metrics, parseProm, test, summary, assert, eq } from "./util.mjs";

const URL = process.env.G4C_URL;
const KEY = process.env.G4C_API_KEY;
const BIN = process.env.G4C_BIN;
const MODEL = process.env.G4C_MODEL;
const LOCAL = process.env.G4C_LOCAL_DIR;
if (!URL || !KEY || !BIN || !MODEL || !LOCAL) {
  console.error("set G4C_URL, G4C_API_KEY, G4C_BIN, G4C_MODEL and G4C_LOCAL_DIR (run_tests.sh does)");
  process.exit(2);
}
const client = new OpenAI({ baseURL: URL + "/v1", apiKey: KEY, maxRetries: 0, timeout: 120000 });
const user = (text) => [{ role: "user", content: text }];
let modelId;

async function raw(path, { method = "POST", body, headers = {}, auth = true } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = `Bearer ${KEY}`;
  if (body !== undefined && !h["Content-Type"]) h["Content-Type"] = "application/json";
  const r = await fetch(URL + path, { method, body, headers: h });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, text, json };
}
function checkError(r, status, param, what) {
  eq(r.status, status, `${what}: status`);
  assert(r.json && typeof r.json.error === "object", `${what}: an error object, got ${r.text.slice(0, 200)}`);
  const e = r.json.error;
  assert(typeof e.message === "string" && e.message.length > 0, `${what}: error.message`);
  assert(typeof e.type === "string", `${what}: error.type`);
  assert("param" in e && "code" in e, `${what}: error.param and error.code present`);
  if (param !== undefined) eq(e.param, param, `${what}: error.param`);
}
async function chat(params) {
  return client.chat.completions.create({ model: modelId, ...params });
}
async function streamChat(params) {
  const s = await client.chat.completions.create({ model: modelId, stream: true, ...params });
  const chunks = [];
  for await (const c of s) chunks.push(c);
  return chunks;
}
const contentOf = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");

await test("GET /health and /v1/models", async () => {
  const h = await raw("/health", { method: "GET", auth: false });
  eq(h.status, 200, "health status");
  eq(h.json, { status: "ok" }, "health body");
  const list = await client.models.list();
  const data = list.data;
  eq(data.length, 1, "one model");
  modelId = data[0].id;
  eq(data[0].object, "model", "object");
  const one = await client.models.retrieve(modelId);
  eq(one.id, modelId, "retrieve");
  try {
    await client.models.retrieve("no-such-model");
    throw new Error("expected 404");
  } catch (e) {
    eq(e.status, 404, "unknown model status");
  }
}, { always: true });

await test("plain text completion: shape, usage, timings", async () => {
  const r = await chat({ messages: user("Say hello."), max_tokens: 8, temperature: 0 });
  eq(r.object, "chat.completion", "object");
  assert(/^chatcmpl-/.test(r.id), "id");
  eq(r.model, modelId, "model");
  assert(Number.isInteger(r.created), "created");
  eq(r.choices.length, 1, "one choice");
  const c = r.choices[0];
  eq(c.index, 0, "index");
  eq(c.message.role, "assistant", "role");
  assert(typeof c.message.content === "string", "content is a string");
  assert(["stop", "length"].includes(c.finish_reason), "finish_reason " + c.finish_reason);
  assert(r.usage.prompt_tokens > 5, "prompt_tokens");
  assert(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8, "completion_tokens <= max_tokens");
  eq(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens, "total_tokens");
  if (c.finish_reason === "length") eq(r.usage.completion_tokens, 8, "length means max_tokens");
  assert(r.timings && r.timings.prompt_n === r.usage.prompt_tokens, "timings.prompt_n");
  assert(r.timings.predicted_per_second > 0 && r.timings.prompt_per_second > 0, "tok/s");
  const sys = await chat({ messages: [{ role: "system", content: "Be brief." }, ...user("Say hello.")], max_tokens: 1 });
  assert(sys.usage.prompt_tokens > r.usage.prompt_tokens, "a system message adds prompt tokens");
  const dev = await chat({ messages: [{ role: "developer", content: "Be brief." }, ...user("Say hello.")], max_tokens: 1 });
  eq(dev.usage.prompt_tokens, sys.usage.prompt_tokens, "developer = system");
  const parts = await chat({ messages: [{ role: "user", content: [{ type: "text", text: "Say hello." }] }], max_tokens: 1 });
  eq(parts.usage.prompt_tokens, r.usage.prompt_tokens, "content parts = string content");
  const multi = await chat({
    messages: [...user("Hi"), { role: "assistant", content: "Hello!" }, ...user("And now?")],
    max_tokens: 2,
    max_completion_tokens: 3,
  });
  assert(multi.usage.completion_tokens <= 3, "max_completion_tokens wins");
});

await test("determinism: temperature 0, and a seed with sampling", async () => {
  const p = { messages: user("Tell me a story about a cat."), max_tokens: 12 };
  const a = await chat({ ...p, temperature: 0 });
  await chat({ messages: user("Something else entirely, to move the prompt cache."), max_tokens: 2 });
  const b = await chat({ ...p, temperature: 0 });
  eq(b.choices[0].message.content, a.choices[0].message.content, "greedy answers");
  eq(b.usage, a.usage, "greedy usage");
  const s1 = await chat({ ...p, temperature: 1, seed: 1234, top_k: 40, top_p: 0.9 });
  const s2 = await chat({ ...p, temperature: 1, seed: 1234, top_k: 40, top_p: 0.9 });
  eq(s2.choices[0].message.content, s1.choices[0].message.content, "seeded answers");
  eq(s2.usage, s1.usage, "seeded usage");
  const m1 = await chat({ ...p, temperature: 0.8, seed: 99, min_p: 0.05, presence_penalty: 0.5 });
  const m2 = await chat({ ...p, temperature: 0.8, seed: 99, min_p: 0.05, presence_penalty: 0.5 });
  eq(m2.choices[0].message.content, m1.choices[0].message.content, "min_p / presence_penalty answers");
});

await test("streaming: chunk format, [DONE], usage chunk, same text as non-streaming", async () => {
  const p = { messages: user("Count to ten."), max_tokens: 16, temperature: 1, seed: 77 };
  const whole = await chat(p);
  const chunks = await streamChat({ ...p, stream_options: { include_usage: true } });
  assert(chunks.length >= 3, "at least role, finish and usage chunks");
  const id = chunks[0].id;
  for (const c of chunks) {
    eq(c.object, "chat.completion.chunk", "object");
    eq(c.id, id, "same id in every chunk");
    eq(c.model, modelId, "model");
  }
  eq(chunks[0].choices[0].delta.role, "assistant", "first delta has the role");
  const last = chunks[chunks.length - 1];
  eq(last.choices, [], "usage chunk has no choices");
  eq(last.usage, whole.usage, "usage chunk = non-streaming usage");
  const fin = chunks[chunks.length - 2];
  eq(fin.choices[0].finish_reason, whole.choices[0].finish_reason, "finish_reason");
  for (const c of chunks.slice(0, -2)) eq(c.choices[0].finish_reason, null, "finish_reason null before the end");
  eq(contentOf(chunks), whole.choices[0].message.content, "streamed text = non-streamed text");
  const plain = await streamChat(p); // without include_usage: no usage chunk
  assert(plain.every((c) => c.choices.length === 1 && !c.usage), "no usage chunk unless asked");
  // the raw wire format: data: lines and a final [DONE]
  const r = await raw("/v1/chat/completions", { body: JSON.stringify({ ...p, stream: true }) });
  eq(r.status, 200, "status");
  assert(r.headers.get("content-type").startsWith("text/event-stream"), "content-type");
  const events = r.text.split("\n\n").filter((x) => x);
  assert(events.every((e) => e.startsWith("data: ")), "every event is a data: line");
  eq(events[events.length - 1], "data: [DONE]", "ends with [DONE]");
});

await test("stop strings (also across tokens), non-streaming and streaming", async () => {
  let base = null;
  for (let seed = 1; seed <= 20 && !base; seed++) {
    const r = await chat({ messages: user("Write a long sentence."), max_tokens: 24, temperature: 1, seed });
    const t = r.choices[0].message.content;
    if ([...t].length >= 6 && !t.includes("\ufffd")) base = { seed, text: t, r };
  }
  assert(base, "some seed gives at least 6 characters of text");
  const chars = [...base.text];
  const at = Math.floor(chars.length / 2);
  const stop = chars.slice(at, at + 2).join("");
  const expect = base.text.slice(0, base.text.indexOf(stop));
  const p = { messages: user("Write a long sentence."), max_tokens: 24, temperature: 1, seed: base.seed };
  const r = await chat({ ...p, stop });
  eq(r.choices[0].message.content, expect, "text before the stop string");
  eq(r.choices[0].finish_reason, "stop", "finish_reason");
  assert(r.usage.completion_tokens <= base.r.usage.completion_tokens, "fewer tokens");
  const r2 = await chat({ ...p, stop: ["\u0001never", stop] });
  eq(r2.choices[0].message.content, expect, "stop as an array");
  const chunks = await streamChat({ ...p, stop: [stop] });
  eq(contentOf(chunks), expect, "streamed text before the stop string");
  const none = await chat({ ...p, stop: ["\u0001never"] });
  eq(none.choices[0].message.content, base.text, "a stop string that never occurs changes nothing");
});

await test("image as base64 data: URL (PNG), detail low, several images", async () => {
  const text = await chat({ messages: user("What is in the picture?"), max_tokens: 2, temperature: 0 });
  const img = (w, h, detail) => ({ type: "image_url", image_url: { url: dataUrl(makePng(w, h)), ...(detail ? { detail } : {}) } });
  const r = await chat({
    messages: [{ role: "user", content: [img(64, 48), { type: "text", text: "What is in the picture?" }] }],
    max_tokens: 2,
    temperature: 0,
  });
  eq(r.choices[0].message.role, "assistant", "role");
  const soft = r.usage.prompt_tokens - text.usage.prompt_tokens;
  assert(soft > 60, `the image adds soft tokens (got ${soft})`);
  const low = await chat({
    messages: [{ role: "user", content: [img(64, 48, "low"), { type: "text", text: "What is in the picture?" }] }],
    max_tokens: 2,
  });
  const softLow = low.usage.prompt_tokens - text.usage.prompt_tokens;
  assert(softLow > 2 && softLow <= 72 + 3 && softLow < soft, `detail low uses the smallest budget (${softLow})`);
  const two = await chat({
    messages: [{ role: "user", content: [img(30, 30, "low"), img(50, 20, "low"), { type: "text", text: "Compare." }] }],
    max_tokens: 1,
  });
  assert(two.usage.prompt_tokens > low.usage.prompt_tokens, "two images");
  const s = await streamChat({
    messages: [{ role: "user", content: [img(16, 16, "low"), { type: "text", text: "Describe." }] }],
    max_tokens: 3,
    stream_options: { include_usage: true },
  });
  assert(s[s.length - 1].usage.prompt_tokens > 60, "streaming with an image");
});

await test("local image files only inside --allow-local-files", async () => {
  writeFileSync(LOCAL + "/pic.png", makePng(40, 40));
  const ask = (url) => ({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url, detail: "low" } }] }], max_tokens: 1 });
  const a = await chat(ask("file://" + LOCAL + "/pic.png"));
  const b = await chat(ask("pic.png"));
  eq(a.usage.prompt_tokens, b.usage.prompt_tokens, "file:// URL and relative path");
  for (const bad of ["/etc/passwd", "../pic.png", "file:///etc/hostname", "nonexistent.png"]) {
    const r = await raw("/v1/chat/completions", { body: JSON.stringify(ask(bad)) });
    checkError(r, 400, "messages[0].content[0].image_url.url", bad);
  }
});

await test("thinking: reasoning_content when enabled", async () => {
  const off = await chat({ messages: user("Think about it."), max_tokens: 4, temperature: 0 });
  assert(!("reasoning_content" in off.choices[0].message), "no reasoning_content when thinking is off");
  const on = await chat({ messages: user("Think about it."), max_tokens: 4, temperature: 0, chat_template_kwargs: { enable_thinking: true } });
  assert(typeof on.choices[0].message.reasoning_content === "string", "reasoning_content is a string");
  assert(on.usage.prompt_tokens > off.usage.prompt_tokens, "<|think|> in the prompt");
  const eff = await chat({ messages: user("Think about it."), max_tokens: 4, temperature: 0, reasoning_effort: "high" });
  eq(eff.usage.prompt_tokens, on.usage.prompt_tokens, "reasoning_effort turns thinking on");
});

const img1 = { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } };
const badRequests = [
  ["invalid JSON", "{", null],
  ["truncated JSON", '{"messages": [{"role": "user", "content": "hi"}', null],
  ["trailing garbage", '{"messages": [{"role": "user", "content": "hi"}]} x', null],
  ["empty body", "", null],
  ["body is an array", "[]", null],
  ["body is a string", '"hello"', null],
  ["messages missing", {}, "messages"],
  ["messages not an array", { messages: "hi" }, "messages"],
  ["messages empty", { messages: [] }, "messages"],
  ["message not an object", { messages: ["hi"] }, "messages[0]"],
  ["role missing", { messages: [{ content: "hi" }] }, "messages[0].role"],
  ["unknown role", { messages: [{ role: "wizard", content: "hi" }] }, "messages[0].role"],
  ["tool role", { messages: [{ role: "tool", content: "hi" }] }, "messages[0].role"],
  ["role is a number", { messages: [{ role: 1, content: "hi" }] }, "messages[0].role"],
  ["content is a number", { messages: [{ role: "user", content: 5 }] }, "messages[0].content"],
  ["content missing", { messages: [{ role: "user" }] }, "messages[0].content"],
  ["part not an object", { messages: [{ role: "user", content: ["hi"] }] }, "messages[0].content[0]"],
  ["part type unknown", { messages: [{ role: "user", content: [{ type: "audio", text: "x" }] }] }, "messages[0].content[0].type"],
  ["text part without text", { messages: [{ role: "user", content: [{ type: "text" }] }] }, "messages[0].content[0].text"],
  ["image_url missing", { messages: [{ role: "user", content: [{ type: "image_url" }] }] }, "messages[0].content[0].image_url"],
  ["image url not a string", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: 3 } }] }] }, "messages[0].content[0].image_url.url"],
  ["invalid base64", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,@@@@" } }] }] }, "messages[0].content[0].image_url.url"],
  ["base64 with one stray char", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,QUJDRA=A" } }] }] }, "messages[0].content[0].image_url.url"],
  ["data URL not base64", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png,abc" } }] }] }, "messages[0].content[0].image_url.url"],
  ["undecodable image", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64," + Buffer.from("not an image at all").toString("base64") } }] }] }, "messages[0].content[0]"],
  ["truncated PNG", { messages: [{ role: "user", content: [img1] }] }, "messages[0].content[0]"],
  ["remote image URL", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }] }] }, "messages[0].content[0].image_url.url"],
  ["image in a system message", { messages: [{ role: "system", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }, { role: "user", content: "hi" }] }, "messages[0].content[0]"],
  ["image detail invalid", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "ultra" } }] }] }, "messages[0].content[0].image_url"],
  ["temperature a string", { messages: user("hi"), temperature: "hot" }, "temperature"],
  ["temperature too high", { messages: user("hi"), temperature: 5 }, "temperature"],
  ["top_p above 1", { messages: user("hi"), top_p: 1.5 }, "top_p"],
  ["top_k negative", { messages: user("hi"), top_k: -1 }, "top_k"],
  ["min_p above 1", { messages: user("hi"), min_p: 2 }, "min_p"],
  ["max_tokens 0", { messages: user("hi"), max_tokens: 0 }, "max_tokens"],
  ["max_tokens negative", { messages: user("hi"), max_tokens: -5 }, "max_tokens"],
  ["max_tokens fractional", { messages: user("hi"), max_tokens: 1.5 }, "max_tokens"],
  ["max_tokens a string", { messages: user("hi"), max_tokens: "10" }, "max_tokens"],
  ["max_tokens beyond the context", { messages: user("hi"), max_tokens: 100000000 }, "max_tokens"],
  ["n = 2", { messages: user("hi"), n: 2 }, "n"],
  ["seed fractional", { messages: user("hi"), seed: 0.5 }, "seed"],
  ["stop a number", { messages: user("hi"), stop: 5 }, "stop"],
  ["stop empty string", { messages: user("hi"), stop: [""] }, "stop[0]"],
  ["stop array with a number", { messages: user("hi"), stop: ["a", 2] }, "stop[1]"],
  ["too many stop strings", { messages: user("hi"), stop: Array(40).fill("x") }, "stop"],
  ["stream not a boolean", { messages: user("hi"), stream: "yes" }, "stream"],
  ["stream_options not an object", { messages: user("hi"), stream: true, stream_options: 1 }, "stream_options"],
  ["model not a string", { messages: user("hi"), model: 7 }, "model"],
  ["logprobs", { messages: user("hi"), logprobs: true }, "logprobs"],
  ["tools", { messages: user("hi"), tools: [{ type: "function", function: { name: "f" } }] }, "tools"],
  ["response_format json", { messages: user("hi"), response_format: { type: "json_object" } }, "response_format"],
  ["enable_thinking not a boolean", { messages: user("hi"), chat_template_kwargs: { enable_thinking: "yes" } }, "chat_template_kwargs.enable_thinking"],
  ["deep nesting", '{"messages":' + "[".repeat(100) + "]".repeat(100) + "}", null],
  ["deep nesting in an ignored field", { messages: user("hi"), extra: JSON.parse("[".repeat(60) + "]".repeat(60)) }, null],
];

await test(`a table of ${badRequests.length} bad requests -> 400 with an OpenAI error naming the field`, async () => {
  for (const [what, body, param] of badRequests) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    const r = await raw("/v1/chat/completions", { body: text });
    checkError(r, 400, param === null ? undefined : param, what);
    eq(r.json.error.type, "invalid_request_error", `${what}: type`);
  }
  // the same through the client: BadRequestError with param
  try {
    await chat({ messages: [{ role: "wizard", content: "hi" }] });
    throw new Error("expected a 400");
  } catch (e) {
    eq(e.status, 400, "client status");
    eq(e.param, "messages[0].role", "client param");
    assert(e instanceof OpenAI.BadRequestError, "BadRequestError");
  }
  // the server is still fine
  const ok = await chat({ messages: user("still there?"), max_tokens: 1 });
  eq(ok.choices.length, 1, "still serving");
});

await test("authentication, routing, methods", async () => {
  const noKey = await raw("/v1/chat/completions", { body: JSON.stringify({ messages: user("hi") }), auth: false });
  checkError(noKey, 401, undefined, "no key");
  eq(noKey.json.error.code, "invalid_api_key", "code");
  const wrong = await raw("/v1/models", { method: "GET", auth: false, headers: { Authorization: "Bearer nope" } });
  checkError(wrong, 401, undefined, "wrong key");
  try {
    await new OpenAI({ baseURL: URL + "/v1", apiKey: "wrong", maxRetries: 0 }).models.list();
    throw new Error("expected 401");
  } catch (e) {
    assert(e instanceof OpenAI.AuthenticationError, "AuthenticationError");
  }
  checkError(await raw("/v1/nothing-here", { method: "GET" }), 404, undefined, "unknown path");
  checkError(await raw("/", { method: "GET" }), 404, undefined, "root");
  const m = await raw("/v1/chat/completions", { method: "GET" });
  checkError(m, 405, undefined, "GET on chat");
  eq(m.headers.get("allow"), "POST", "Allow header");
  checkError(await raw("/v1/models", { method: "DELETE" }), 405, undefined, "DELETE models");
  checkError(await raw("/v1/chat/completions", { method: "PUT", body: "{}" }), 405, undefined, "PUT chat");
  eq((await raw("/health", { method: "GET", auth: false })).status, 200, "health needs no key");
  eq((await raw("/metrics", { method: "GET", auth: false })).status, 200, "metrics needs no key");
});

await test("body limits: Content-Length over --max-body -> 413 before reading; chunked -> 413 after dropping it", async () => {
  const big = JSON.stringify({ messages: user("x".repeat(2 << 20)) });
  checkError(await raw("/v1/chat/completions", { body: big }), 413, undefined, "2 MiB body");
  // chunked transfer (no Content-Length): the limit applies while reading
  const piece = new TextEncoder().encode("x".repeat(65536));
  let sent = 0;
  const stream = new ReadableStream({
    pull(ctl) {
      if (sent++ < 40) ctl.enqueue(piece);
      else ctl.close();
    },
  });
  let status;
  try {
    const r = await fetch(URL + "/v1/chat/completions", {
      method: "POST",
      body: stream,
      duplex: "half",
      headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    });
    status = r.status;
    await r.text();
  } catch (e) {
    status = "closed"; // the server may close the connection instead of reading the rest
  }
  eq(status, 413, "chunked body over the limit (read and dropped, then 413)");
  const ok = await chat({ messages: user("after the big ones"), max_tokens: 1 });
  eq(ok.choices.length, 1, "still serving");
});

async function waitIdle(ms = 20000) {
  const t0 = Date.now();
  for (;;) {
    const m = await metrics(URL);
    if (m["gemma4c_requests_processing"] === 0 && m["gemma4c_queue_depth"] === 0) return m;
    if (Date.now() - t0 > ms) throw new Error("server still busy after " + ms + " ms");
    await new Promise((r) => setTimeout(r, 100));
  }
}

await test("a client that disconnects cancels its generation (streaming, running, queued)", async () => {
  const before = await waitIdle();
  // streaming: read three chunks, then hang up
  const ctl = new AbortController();
  const s = await client.chat.completions.create(
    { model: modelId, messages: user("Go on forever."), max_tokens: 4000, stream: true },
    { signal: ctl.signal },
  );
  let n = 0;
  try {
    for await (const c of s) if (++n >= 3) ctl.abort();
  } catch {}
  const t0 = Date.now();
  const mid = await waitIdle(15000);
  const gen = mid["gemma4c_completion_tokens_total"] - before["gemma4c_completion_tokens_total"];
  assert(gen < 4000, `streaming generation stopped early (${gen} tokens, idle after ${Date.now() - t0} ms)`);
  // non-streaming: one running and one queued behind it, both abandoned
  const post = (text, signal) =>
    fetch(URL + "/v1/chat/completions", {
      method: "POST",
      signal,
      headers: { Authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ messages: user(text), max_tokens: 4000 }),
    }).catch(() => "aborted");
  const c1 = new AbortController(),
    c2 = new AbortController();
  const p1 = post("Run forever.", c1.signal);
  await new Promise((r) => setTimeout(r, 300));
  const p2 = post("Wait forever.", c2.signal);
  await new Promise((r) => setTimeout(r, 500));
  c2.abort(); // queued
  await new Promise((r) => setTimeout(r, 200));
  c1.abort(); // running
  eq([await p1, await p2], ["aborted", "aborted"], "both aborted");
  const after = await waitIdle(15000);
  const gen2 = after["gemma4c_completion_tokens_total"] - mid["gemma4c_completion_tokens_total"];
  assert(gen2 < 4000, `abandoned generations stopped early (${gen2} tokens)`);
  assert(after['gemma4c_requests_total{code="other"}'] >= 3, "counted as client-closed (499)");
  const ok = await chat({ messages: user("after the hang-ups"), max_tokens: 1 });
  eq(ok.choices.length, 1, "still serving");
});

await test("queue full -> 503 with Retry-After (server started with --queue 2)", async () => {
  await waitIdle();
  const reqs = [];
  for (let i = 0; i < 8; i++)
    reqs.push(raw("/v1/chat/completions", { body: JSON.stringify({ messages: user("Busy " + i), max_tokens: 40, temperature: 0 }) }));
  const rs = await Promise.all(reqs);
  const busy = rs.filter((r) => r.status === 503);
  const ok = rs.filter((r) => r.status === 200);
  eq(busy.length + ok.length, 8, "every answer is 200 or 503");
  // 2 may wait; the worker may or may not have taken the first one before the queue filled
  assert(busy.length >= 1 && ok.length >= 2, `some were refused (${busy.length}) and some served (${ok.length})`);
  for (const b of busy) {
    checkError(b, 503, undefined, "queue full");
    eq(b.json.error.code, "queue_full", "code");
    assert(Number(b.headers.get("retry-after")) >= 1, "Retry-After");
  }
});

await test("/metrics is Prometheus text and counts what happened", async () => {
  const r = await fetch(URL + "/metrics");
  assert(r.headers.get("content-type").startsWith("text/plain"), "content-type");
  const m = parseProm(await r.text());
  assert(m['gemma4c_requests_total{code="200"}'] > 10, "200s counted");
  assert(m['gemma4c_requests_total{code="400"}'] >= badRequests.length, "400s counted");
  assert(m['gemma4c_requests_total{code="401"}'] >= 2, "401s counted");
  assert(m['gemma4c_requests_total{code="404"}'] >= 2, "404s counted");
  assert(m['gemma4c_requests_total{code="405"}'] >= 3, "405s counted");
  assert(m['gemma4c_requests_total{code="413"}'] >= 1, "413s counted");
  assert(m['gemma4c_requests_total{code="503"}'] >= 1, "503s counted");
  assert(m["gemma4c_prompt_tokens_total"] > 0 && m["gemma4c_completion_tokens_total"] > 0, "tokens");
  let total = 0;
  for (const [k, v] of Object.entries(m)) if (k.startsWith("gemma4c_requests_total{")) total += v;
  eq(m["gemma4c_request_duration_seconds_count"], total, "histogram count = requests");
  eq(m['gemma4c_request_duration_seconds_bucket{le="+Inf"}'], total, "+Inf bucket = count");
  assert(m['gemma4c_request_duration_seconds_bucket{le="0.005"}'] <= m['gemma4c_request_duration_seconds_bucket{le="1"}'], "cumulative buckets");
  assert("gemma4c_queue_depth" in m && "gemma4c_prompt_tokens_per_second" in m && "gemma4c_generation_tokens_per_second" in m, "gauges");
});

await test("--timeout 2: no request outlives its deadline (cut short, or 503 if it never ran)", async () => {
  const srv = await startServer(BIN, MODEL, ["--timeout", "2"]);
  try {
    const c = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "none", maxRetries: 0 });
    const t0 = Date.now();
    const rs = await Promise.all(
      [0, 1, 2].map((i) => c.chat.completions.create({ model: "x", messages: user("long " + i), max_tokens: 8000 }).catch((e) => e)),
    );
    const ms = Date.now() - t0;
    assert(ms < 12000, `all answered soon after the timeout (${ms} ms)`);
    for (const r of rs) {
      if (r.choices) {
        eq(r.choices[0].finish_reason, "length", "cut: finish_reason length");
        assert(r.usage.completion_tokens < 8000, "fewer tokens than asked");
      } else {
        eq(r.status, 503, "refused: 503");
        eq(r.code, "timeout", "code");
      }
    }
    assert(rs.some((r) => r.choices), "the one that ran was cut short and answered");
    assert(rs.some((r) => !r.choices), "at least one timed out waiting in the queue");
  } finally {
    eq(await stopServer(srv), 0, "clean exit on SIGTERM");
  }
});

await test("--parallel 2: concurrent requests give the same answers as one worker", async () => {
  const p = (i) => ({ messages: user("Parallel " + (i % 3)), max_tokens: 6, temperature: 1, seed: 5 + (i % 3) });
  const ref = [];
  for (let i = 0; i < 3; i++) ref.push(await chat(p(i)));
  const srv = await startServer(BIN, MODEL, ["--parallel", "2", "-t", "2"]);
  try {
    const c = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "none", maxRetries: 0 });
    const rs = await Promise.all([...Array(6).keys()].map((i) => c.chat.completions.create({ model: "x", ...p(i) })));
    rs.forEach((r, i) => {
      eq(r.choices[0].message.content, ref[i % 3].choices[0].message.content, "answer " + i);
      eq(r.usage, ref[i % 3].usage, "usage " + i);
    });
    const m = await metrics(srv.url);
    eq(m["gemma4c_workers"], 2, "two workers");
  } finally {
    eq(await stopServer(srv), 0, "clean exit on SIGTERM");
  }
});

await test("gemma4c eval --endpoint runs against the server (built-in VQA samples)", async () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  if (!existsSync(join(root, "data", "samples", "vqa.jsonl"))) return console.log("     (skipped: no data/samples)");
  const out = mkdtempSync(join(tmpdir(), "g4c-eval-"));
  try {
    execFileSync(BIN, ["eval", "vqa", "--endpoint", URL + "/v1", "--api-key", KEY, "--out", out, "--n", "2", "--max-tokens", "2",
      "--no-progress"], { cwd: root, stdio: ["ignore", "ignore", "pipe"], timeout: 300000 });
    const rows = readFileSync(join(out, "results.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    eq(rows.length, 2, "two samples answered");
    for (const r of rows) assert(r.prompt_tokens > 60 && r.gen_tokens >= 1 && r.gen_tokens <= 2, "usage came through: " + JSON.stringify(r));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

await test("SIGTERM with requests in flight: each gets an answer, the server exits 0", async () => {
  const srv = await startServer(BIN, MODEL, []);
  const c = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "none", maxRetries: 0 });
  const long = (i) => ({ model: "x", messages: user("forever " + i), max_tokens: 8000 });
  const running = c.chat.completions.create(long(0)).catch((e) => e);
  // wait until the first request is really running (a fixed sleep is flaky on a loaded machine)
  for (const t0 = Date.now(); ; ) {
    const m = await metrics(srv.url);
    if (m["gemma4c_requests_processing"] === 1) break;
    if (Date.now() - t0 > 20000) throw new Error("the first request never started");
    await new Promise((r) => setTimeout(r, 50));
  }
  const queued = c.chat.completions.create(long(1)).catch((e) => e);
  const stream = (async () => {
    try {
      let text = "";
      for await (const ch of await c.chat.completions.create({ ...long(2), stream: true })) text += ch.choices[0]?.delta?.content ?? "";
      return "ended";
    } catch (e) {
      return e;
    }
  })();
  for (const t0 = Date.now(); ; ) { /* both later requests queued */
    const m = await metrics(srv.url);
    if (m["gemma4c_queue_depth"] === 2) break;
    if (Date.now() - t0 > 20000) throw new Error("the later requests never queued");
    await new Promise((r) => setTimeout(r, 50));
  }
  const t0 = Date.now();
  eq(await stopServer(srv), 0, "exit status");
  assert(Date.now() - t0 < 10000, "stopped promptly");
  const r0 = await running;
  eq(r0.choices?.[0]?.finish_reason, "length", "the running one is cut short and answered (got " + (r0.status ?? "") + " " + (r0.message ?? "") + ")");
  const r1 = await queued;
  eq(r1.status, 503, "the queued one gets 503");
  const r2 = await stream;
  eq(r2.code, "shutting_down", "the queued stream ends with an error event");
});

process.exit(summary());
