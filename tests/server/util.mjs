// Shared helpers for the server tests: a PNG encoder (no dependencies), spawning `gemma4c serve` on loopback with
// a free port, metrics scraping, and a tiny assertion/test runner that prints "N passed, N failed".
import { spawn } from "node:child_process";
import { deflateSync } from "node:zlib";
import { readFileSync } from "node:fs";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
// An RGB PNG of w x h whose pixels come from fn(x, y) -> [r, g, b].
export function makePng(w, h, fn = (x, y) => [(x * 37) & 255, (y * 59) & 255, ((x + y) * 11) & 255]) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const [r, g, b] = fn(x, y);
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = r;
      raw[o + 1] = g;
      raw[o + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
export const dataUrl = (png) => "data:image/png;base64," + png.toString("base64");

// Start `gemma4c serve` on 127.0.0.1 with --port 0 and wait for its "listening on" line.
export function startServer(bin, model, args = [], { timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ["serve", "-m", model, "--host", "127.0.0.1", "--port", "0", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error("server did not start:\n" + log));
    }, timeoutMs);
    p.stderr.on("data", (d) => {
      log += d.toString();
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !p.url) {
        clearTimeout(timer);
        p.url = `http://127.0.0.1:${m[1]}`;
        resolve(p);
      }
    });
    p.on("exit", (code) => {
      clearTimeout(timer);
      if (!p.url) reject(new Error(`server exited with ${code}:\n${log}`));
    });
    p.getLog = () => log;
  });
}
export function stopServer(p, timeoutMs = 30000) {
  return new Promise((resolve) => {
    if (p.exitCode !== null) return resolve(p.exitCode);
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code, sig) => {
      clearTimeout(t);
      resolve(code ?? sig);
    });
    p.kill("SIGTERM");
  });
}

// Prometheus text -> { "name{labels}": value }, checking every line's syntax.
export function parseProm(text) {
  const out = {};
  const types = {};
  for (const line of text.split("\n")) {
    if (!line) continue;
    if (line.startsWith("# HELP ")) continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(type)) throw new Error("bad TYPE: " + line);
      types[name] = type;
      continue;
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? ([-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$/);
    if (!m) throw new Error("not Prometheus text: " + JSON.stringify(line));
    const base = m[1].replace(/_(bucket|sum|count)$/, "");
    if (!types[m[1]] && !types[base]) throw new Error("sample without # TYPE: " + line);
    out[m[1] + (m[2] || "")] = Number(m[3]);
  }
  return out;
}
export async function metrics(url) {
  const r = await fetch(url + "/metrics");
  return parseProm(await r.text());
}

export function rssKiB(pid) {
  // /proc/PID/status VmRSS
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = s.match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : NaN;
}

// ---- a minimal test runner ----
let passed = 0,
  failed = 0;
export async function test(name, fn, { always = false } = {}) {
  if (process.env.TEST_FILTER && !always && !new RegExp(process.env.TEST_FILTER).test(name)) return;
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
export function summary() {
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}
export function assert(cond, msg) {
  if (!cond) throw new Error("assertion failed: " + msg);
}
export function eq(a, b, msg) {
  const sa = JSON.stringify(a),
    sb = JSON.stringify(b);
  if (sa !== sb) throw new Error(`${msg}: expected ${sb}, got ${sa}`);
}
