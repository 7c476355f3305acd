// Bounded load test for gemma4c serve (loopback only; stops by itself): LOAD_N requests from LOAD_C concurrent
// clients, a LOAD_BAD share of them malformed. Every malformed one must get its 4xx, every valid one the same
// answer (content, usage, finish_reason) as when it ran alone, the server must stay up, and its RSS after the run
// must be within LOAD_RSS_SLACK_MB of before.
//   G4C_URL, G4C_API_KEY, G4C_SERVER_PID (for RSS); LOAD_N (2000), LOAD_C (32), LOAD_BAD (0.2),
//   LOAD_DEADLINE_S (900), LOAD_RSS_SLACK_MB (8), LOAD_OUT (a JSON file for the figures)
import OpenAI from "openai";
import { writeFileSync } from "node:fs";
import os from "node:os";
import { makePng, dataUrl, rssKiB, metrics } from "./util.mjs";

const URL = process.env.G4C_URL;
const KEY = process.env.G4C_API_KEY;
const PID = Number(process.env.G4C_SERVER_PID);
const N = Number(process.env.LOAD_N || 2000);
const C = Number(process.env.LOAD_C || 32);
const BAD = Number(process.env.LOAD_BAD || 0.2);
const DEADLINE_S = Number(process.env.LOAD_DEADLINE_S || 900);
const SLACK_MB = Number(process.env.LOAD_RSS_SLACK_MB || 8);
if (!URL || !KEY || !PID) {
  console.error("set G4C_URL, G4C_API_KEY and G4C_SERVER_PID (run_tests.sh does)");
  process.exit(2);
}
if (!/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):/.test(URL)) {
  console.error("the load test only targets loopback");
  process.exit(2);
}
const client = new OpenAI({ baseURL: URL + "/v1", apiKey: KEY, maxRetries: 0, timeout: 300000 });

// xorshift32: the same mix of requests every run
let rng = 0x9e3779b9;
const rand = () => {
  rng ^= rng << 13;
  rng >>>= 0;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  rng >>>= 0;
  return rng / 4294967296;
};

// ---- valid requests: each kind is run alone first; under load it must give exactly that answer ----
const prompts = ["Hello!", "What is 2+2?", "Name a color.", "Tell me a joke.", "Translate 'cat' to French.",
  "Why is the sky blue?", "List three fruits.", "Good morning."];
const png = dataUrl(makePng(24, 24));
const valid = [];
prompts.forEach((p, i) => valid.push({ body: { messages: [{ role: "user", content: p }], max_tokens: 1 + (i % 3), temperature: 0 }, w: 10 }));
prompts.forEach((p, i) => valid.push({ body: { messages: [{ role: "user", content: p }], max_tokens: 1 + (i % 3), temperature: 0, stream: true, stream_options: { include_usage: true } }, w: 5 }));
valid.push({ body: { messages: [{ role: "system", content: "Be terse." }, { role: "user", content: "Hi" }], max_tokens: 2, temperature: 1, seed: 3 }, w: 3 });
valid.push({ body: { messages: [{ role: "user", content: "Pick a word." }], max_tokens: 2, temperature: 1, seed: 11, stop: ["e"] }, w: 3 });
valid.push({ body: { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: png, detail: "low" } }, { type: "text", text: "What is this?" }] }], max_tokens: 1, temperature: 0 }, w: 4 });

// ---- malformed requests and the status each must get ----
const j = (o) => JSON.stringify(o);
const bad = [
  { what: "invalid JSON", body: '{"messages": [', status: 400 },
  { what: "not an object", body: "[1,2,3]", status: 400 },
  { what: "no messages", body: j({ model: "x" }), status: 400 },
  { what: "unknown role", body: j({ messages: [{ role: "robot", content: "hi" }] }), status: 400 },
  { what: "content a number", body: j({ messages: [{ role: "user", content: 42 }] }), status: 400 },
  { what: "temperature a string", body: j({ messages: [{ role: "user", content: "hi" }], temperature: "warm" }), status: 400 },
  { what: "max_tokens negative", body: j({ messages: [{ role: "user", content: "hi" }], max_tokens: -1 }), status: 400 },
  { what: "max_tokens past the context", body: j({ messages: [{ role: "user", content: "hi" }], max_tokens: 1e9 }), status: 400 },
  { what: "n = 3", body: j({ messages: [{ role: "user", content: "hi" }], n: 3 }), status: 400 },
  { what: "bad base64", body: j({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,!!!" } }] }] }), status: 400 },
  { what: "undecodable image", body: j({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ==" } }] }] }), status: 400 },
  { what: "deep nesting", body: '{"messages":' + "[".repeat(500) + "]".repeat(500) + "}", status: 400 },
  { what: "stop a number", body: j({ messages: [{ role: "user", content: "hi" }], stop: 1 }), status: 400 },
  { what: "binary garbage", body: Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22]), status: 400 },
  { what: "no API key", body: j({ messages: [{ role: "user", content: "hi" }] }), status: 401, noAuth: true },
  { what: "wrong method", method: "GET", status: 405 },
  { what: "unknown path", path: "/v1/completions-nope", body: "{}", status: 404 },
  { what: "body over --max-body", body: j({ messages: [{ role: "user", content: "x".repeat(1100000) }] }), status: 413, rare: true },
];

const pick = (list) => {
  const total = list.reduce((a, x) => a + (x.w || 1), 0);
  let r = rand() * total;
  for (const x of list) if ((r -= x.w || 1) < 0) return x;
  return list[list.length - 1];
};

async function runValid(v) {
  if (v.body.stream) {
    const s = await client.chat.completions.create({ model: "m", ...v.body });
    let content = "",
      finish = null,
      usage = null,
      id = null,
      role = null;
    for await (const c of s) {
      if (id === null) id = c.id;
      if (c.id !== id || c.object !== "chat.completion.chunk") throw new Error("inconsistent chunk");
      if (c.choices.length) {
        role = role ?? c.choices[0].delta.role;
        content += c.choices[0].delta.content ?? "";
        finish = c.choices[0].finish_reason ?? finish;
      }
      if (c.usage) usage = c.usage;
    }
    if (role !== "assistant") throw new Error("no role in the first chunk");
    return { content, finish, usage };
  }
  const r = await client.chat.completions.create({ model: "m", ...v.body });
  if (r.object !== "chat.completion" || r.choices.length !== 1) throw new Error("bad shape");
  return { content: r.choices[0].message.content, finish: r.choices[0].finish_reason, usage: r.usage };
}

async function runBad(b) {
  const headers = { "Content-Type": "application/json" };
  if (!b.noAuth) headers.Authorization = `Bearer ${KEY}`;
  const r = await fetch(URL + (b.path || "/v1/chat/completions"), {
    method: b.method || "POST",
    headers,
    body: b.method === "GET" ? undefined : b.body,
    signal: AbortSignal.timeout(60000),
  });
  const text = await r.text();
  let e = null;
  try {
    e = JSON.parse(text).error;
  } catch {}
  return { status: r.status, errorOk: !!e && typeof e.message === "string" && "param" in e && "code" in e && typeof e.type === "string" };
}

const pct = (xs, p) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

// ---- reference answers, one at a time ----
for (const v of valid) v.ref = await runValid(v);
await new Promise((r) => setTimeout(r, 500));
const rssBefore = rssKiB(PID);
const m0 = await metrics(URL);

// ---- the load ----
const plan = [];
for (let i = 0; i < N; i++) {
  if (rand() < BAD) {
    let b = pick(bad);
    if (b.rare && rand() > 0.1) b = bad[0]; // the 1 MB body only now and then
    plan.push({ bad: b });
  } else plan.push({ valid: pick(valid) });
}
const res = { valid: 0, validOk: 0, bad: 0, badOk: 0, failures: [], latValid: [], latBad: [] };
let next = 0;
const t0 = Date.now();
let timedOut = false;
async function clientLoop() {
  while (next < plan.length) {
    if ((Date.now() - t0) / 1000 > DEADLINE_S) {
      timedOut = true;
      return;
    }
    const item = plan[next++];
    const ts = Date.now();
    if (item.valid) {
      res.valid++;
      try {
        const got = await runValid(item.valid);
        const ref = item.valid.ref;
        if (got.content === ref.content && got.finish === ref.finish && JSON.stringify(got.usage) === JSON.stringify(ref.usage)) res.validOk++;
        else if (res.failures.length < 20) res.failures.push({ kind: "valid answer differs", got, ref });
      } catch (e) {
        if (res.failures.length < 20) res.failures.push({ kind: "valid request failed", error: String(e) });
      }
      res.latValid.push(Date.now() - ts);
    } else {
      res.bad++;
      try {
        const got = await runBad(item.bad);
        if (got.status === item.bad.status && got.errorOk) res.badOk++;
        else if (res.failures.length < 20) res.failures.push({ kind: "malformed", what: item.bad.what, got });
      } catch (e) {
        // a 413 may legitimately come back as a closed connection while the body is still being sent
        if (item.bad.status === 413) res.badOk++;
        else if (res.failures.length < 20) res.failures.push({ kind: "malformed request failed", what: item.bad.what, error: String(e) });
      }
      res.latBad.push(Date.now() - ts);
    }
  }
}
await Promise.all([...Array(C).keys()].map(() => clientLoop()));
const wallS = (Date.now() - t0) / 1000;

// ---- after ----
let alive = true;
try {
  process.kill(PID, 0);
} catch {
  alive = false;
}
let healthy = false;
try {
  healthy = (await fetch(URL + "/health")).status === 200;
} catch {}
await new Promise((r) => setTimeout(r, 1000));
const rssAfter = alive ? rssKiB(PID) : NaN;
const m1 = alive ? await metrics(URL) : {};
const d = (k) => (m1[k] ?? 0) - (m0[k] ?? 0);
const figures = {
  date: new Date().toISOString().slice(0, 10),
  machine: `${os.cpus().length} x ${os.cpus()[0]?.model?.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, load avg before ${os.loadavg()[0].toFixed(1)}`,
  requests: res.valid + res.bad,
  concurrency: C,
  malformed: res.bad,
  malformed_share: +(res.bad / Math.max(1, res.valid + res.bad)).toFixed(3),
  valid_ok: `${res.validOk}/${res.valid}`,
  malformed_4xx_ok: `${res.badOk}/${res.bad}`,
  wall_s: +wallS.toFixed(1),
  req_per_s: +((res.valid + res.bad) / wallS).toFixed(1),
  p50_ms_valid: pct(res.latValid, 50),
  p95_ms_valid: pct(res.latValid, 95),
  p50_ms_malformed: pct(res.latBad, 50),
  p95_ms_malformed: pct(res.latBad, 95),
  rss_before_mib: +(rssBefore / 1024).toFixed(1),
  rss_after_mib: +(rssAfter / 1024).toFixed(1),
  server_alive: alive && healthy,
  completion_tokens: d("gemma4c_completion_tokens_total"),
  server_5xx: d('gemma4c_requests_total{code="500"}') + d('gemma4c_requests_total{code="503"}'),
};
console.log(JSON.stringify(figures, null, 2));
if (process.env.LOAD_OUT) writeFileSync(process.env.LOAD_OUT, JSON.stringify(figures) + "\n");
for (const f of res.failures) console.log("failure:", JSON.stringify(f).slice(0, 600));
const problems = [];
if (timedOut) problems.push(`stopped at the ${DEADLINE_S} s deadline`);
if (res.valid + res.bad !== N) problems.push("not every request ran");
if (res.validOk !== res.valid) problems.push(`${res.valid - res.validOk} valid requests answered wrongly`);
if (res.badOk !== res.bad) problems.push(`${res.bad - res.badOk} malformed requests not answered with their 4xx`);
if (!alive || !healthy) problems.push("the server died or stopped answering");
if (!(rssAfter - rssBefore <= SLACK_MB * 1024)) problems.push(`RSS grew by ${((rssAfter - rssBefore) / 1024).toFixed(1)} MiB`);
for (const p of problems) console.log("PROBLEM:", p);
console.log(problems.length ? "load test FAILED" : "load test passed");
process.exit(problems.length ? 1 : 0);
