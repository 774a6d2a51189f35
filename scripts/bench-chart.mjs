// Draws BENCHMARKS.md's chart (one SVG) from the benchmarks' JSON results. Node >= 20, no
// dependencies. Run it through `scripts/bench-chart`:
//
//   scripts/bench-chart [RESULTS_DIR] [-o OUT.svg]
//
// RESULTS_DIR defaults to target/bench-results/ and OUT.svg to docs/benchmarks.svg, both in the
// repository. Every *.json file of RESULTS_DIR is read; each is one run of one benchmark:
//
//   {"bench": "rpc", "title": "…", "date": "<ISO 8601 UTC>", "machine": "…", "command": "…",
//    "cases": [ … ]}
//
// written by the Rust benches (bench/benches/report/mod.rs) and by the TypeScript bench
// (ts/bench, ts-ws-promise.json). A case is an object with these fields:
//
//   name, shape           the system and how it is driven ("sequential", "256 in flight",
//                         "1024 connections × 10 calls", "idle"); (name, shape) is unique
//   calls_per_s           median calls per second (absent for "idle")
//   p50_us, p99_us        latency percentiles in µs, or null where not measured
//   baseline              the name of the case of the same shape it is compared with, or null
//   ratio                 calls_per_s ÷ the baseline's calls_per_s, or null
//   target                the least ratio the project aims for (issue 10), or null
//   (others)              per benchmark, e.g. payload, connect_ms, calls_ms, cpu_us_per_call
//                         (rpc: process CPU time per call, both ends)
//
// and, for the idle-memory cases (shape "idle"):
//
//   bytes_per_connection        growth of the server's resident set per connection
//   heap_bytes_per_connection   growth of its live heap per connection
//   max_bytes_per_connection    the goal (at most), or null
//   connections                 how many connections were opened
//
// The chart shows only the cases with a target (a bar of the ratio to its baseline, the target
// as a vertical mark, ✓/✗ and a hatched bar where missed), grouped by benchmark, then the
// idle-memory cases (resident KiB per connection against the goal), each group on its own
// scale.

import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function usage(code) {
  const text = "usage: scripts/bench-chart [RESULTS_DIR] [-o OUT.svg]\n" +
    "  RESULTS_DIR  the benchmarks' *.json files (default: target/bench-results)\n" +
    "  -o OUT.svg   where to write the chart (default: docs/benchmarks.svg)\n";
  (code ? process.stderr : process.stdout).write(text);
  process.exit(code);
}

let dir = join(root, "target", "bench-results");
let out = join(root, "docs", "benchmarks.svg");
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "-h" || a === "--help") usage(0);
  else if (a === "-o" || a === "--out") {
    if (i + 1 >= args.length) usage(2);
    out = resolve(args[++i]);
  } else if (a.startsWith("--out=")) out = resolve(a.slice(6));
  else if (a.startsWith("-")) usage(2);
  else dir = resolve(a);
}

// ------------------------------------------------------------------ input

let files;
try {
  files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
} catch (e) {
  console.error(`bench-chart: cannot read ${dir}: ${e.message}`);
  process.exit(1);
}
if (files.length === 0) {
  console.error(`bench-chart: no *.json results in ${dir} (run cargo bench -p wsp-bench first)`);
  process.exit(1);
}
const runs = files.map((f) => {
  const path = join(dir, f);
  let run;
  try {
    run = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    console.error(`bench-chart: ${path}: ${e.message}`);
    process.exit(1);
  }
  if (!run || !Array.isArray(run.cases)) {
    console.error(`bench-chart: ${path}: no "cases" array`);
    process.exit(1);
  }
  run.bench ??= f.replace(/\.json$/, "");
  return run;
});

// Rust round trips first, then many connections, other benchmarks by name, idle memory last.
const rank = (b) => ({ rpc: 0, connections: 1, idle: 9 })[b] ?? 5;
runs.sort((a, b) => rank(a.bench) - rank(b.bench) || a.bench.localeCompare(b.bench));

const isNum = (x) => typeof x === "number" && Number.isFinite(x);

// ------------------------------------------------------------------ layout

const W = 900;
const PAD = 20;
const LABEL_W = 330; // case names
const VALUE_W = 150; // value and verdict
const BAR_X = PAD + LABEL_W;
const BAR_W = W - BAR_X - VALUE_W - PAD;
const ROW_H = 40;
const BAR_H = 16;
const FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif";
const MET = "#2e7d32";
const MISSED = "#c62828";

const esc = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
// At most `n` characters (the label column is a fixed width).
const clip = (s, n) => (s.length > n ? s.slice(0, n - 1) + "…" : s);
const fmt = (x, d = 2) => x.toFixed(d);

/** Tick spacing giving about `n` ticks up to `max`. */
function step(max, n = 6) {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
}

const parts = [];
let y = PAD;

// Title: what, and where and when it was measured.
const dates = runs.map((r) => r.date).filter(Boolean).sort();
// `YYYY-MM-DD HH:MM UTC`, or a range (`… HH:MM–HH:MM UTC` within a day).
const minute = (d) => d.replace("T", " ").slice(0, 16);
const [first, last] = [dates[0], dates.at(-1)].map((d) => d && minute(d));
const when = !first ? "date unknown"
  : first === last ? `${first} UTC`
  : first.slice(0, 10) === last.slice(0, 10) ? `${first}–${last.slice(11)} UTC`
  : `${first} – ${last} UTC`;
// The machine once in the title; what differs between the runs (the rustc or Node version)
// in each group's heading.
const machines = [...new Set(runs.map((r) => r.machine).filter(Boolean))];
const hosts = [...new Set(machines.map((m) => m.split(", ")[0]))];
const shared = machines.length === 1 ? machines[0] : hosts.length === 1 ? hosts[0] : null;
const ownMachine = (run) =>
  !run.machine || run.machine === shared ? undefined
  : shared && run.machine.startsWith(shared + ", ") ? run.machine.slice(shared.length + 2)
  : run.machine;
y += 20;
parts.push(`<text x="${PAD}" y="${y}" font-size="18" font-weight="bold">wsp benchmarks: targets of issue 10</text>`);
y += 20;
parts.push(`<text x="${PAD}" y="${y}" font-size="12" fill="#444">${esc(clip(`${shared ?? (machines.length ? "machines differ (see each group)" : "machine unknown")} · ${when}`, 130))}</text>`);
y += 16;
parts.push(`<text x="${PAD}" y="${y}" font-size="12" fill="#444">Bars: calls/s ÷ the baseline's calls/s (same run, same shape); │ marks the target. ✓ met, ✗ missed (hatched).</text>`);
y += 10;

/** A group heading: the benchmark's title and the command that ran it. */
function heading(run, note) {
  y += 30;
  parts.push(`<text x="${PAD}" y="${y}" font-size="14" font-weight="bold">${esc(run.title ?? run.bench)}</text>`);
  y += 15;
  const cmd = [run.command, note, ownMachine(run)].filter(Boolean).join(" · ");
  parts.push(`<text x="${PAD}" y="${y}" font-size="11" fill="#666" font-family="ui-monospace, 'DejaVu Sans Mono', monospace">${esc(clip(cmd, 140))}</text>`);
  y += 8;
}

/** The axis above a group's bars: ticks from 0 to `max`, labelled by `label(t)`. */
function axis(max, label, height, mark) {
  const s = step(max);
  const x = (v) => BAR_X + (v / max) * BAR_W;
  for (let t = 0; t <= max + 1e-9; t += s) {
    const strong = mark !== undefined && Math.abs(t - mark) < 1e-9;
    parts.push(`<line x1="${x(t).toFixed(1)}" y1="${y + 14}" x2="${x(t).toFixed(1)}" y2="${y + 14 + height}" stroke="${strong ? "#999" : "#e3e3e3"}" stroke-width="1"/>`);
    parts.push(`<text x="${x(t).toFixed(1)}" y="${y + 10}" font-size="10" fill="#777" text-anchor="middle">${esc(label(t))}</text>`);
  }
  y += 14;
}

/**
 * One bar row: `value` against the goal `goal` on a scale 0…`max`; `atLeast` says whether the
 * goal is a least (ratio) or a most (bytes) value.
 */
function bar({ title, sub, value, goal, atLeast, max, text, goalText }) {
  const x = (v) => BAR_X + (Math.min(v, max) / max) * BAR_W;
  const top = y + (ROW_H - BAR_H) / 2;
  parts.push(`<text x="${PAD}" y="${y + 17}" font-size="13">${esc(clip(title, 46))}</text>`);
  parts.push(`<text x="${PAD}" y="${y + 31}" font-size="11" fill="#666">${esc(clip(sub, 56))}</text>`);
  if (!isNum(value)) {
    parts.push(`<text x="${W - PAD - VALUE_W + 10}" y="${top + 12}" font-size="12" fill="#777">? no data</text>`);
    parts.push(`<text x="${W - PAD - VALUE_W + 10}" y="${top + 26}" font-size="10" fill="#555">${esc(goalText)}</text>`);
    y += ROW_H;
    return;
  }
  const met = atLeast ? value >= goal : value <= goal;
  const colour = met ? MET : MISSED;
  const w = Math.max(1, x(value) - BAR_X);
  parts.push(`<rect x="${BAR_X}" y="${top}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${met ? MET : "url(#missed)"}" stroke="${colour}" stroke-width="1"/>`);
  if (value > max) {
    // Off the scale: a notch at the end says the bar is cut.
    const e = BAR_X + BAR_W;
    parts.push(`<path d="M${e - 6} ${top - 1} l6 ${BAR_H / 2 + 1} l-6 ${BAR_H / 2 + 1}" fill="#fff" stroke="#fff" stroke-width="2"/>`);
  }
  // The target: a dark mark across the bar, with a caret above it.
  const tx = x(goal).toFixed(1);
  parts.push(`<line x1="${tx}" y1="${top - 5}" x2="${tx}" y2="${top + BAR_H + 5}" stroke="#111" stroke-width="2.5"/>`);
  parts.push(`<path d="M${tx} ${top - 4} l-4 -6 h8 z" fill="#111"/>`);
  const mark = met ? "✓" : "✗";
  parts.push(`<text x="${W - PAD - VALUE_W + 10}" y="${top + 12}" font-size="13" font-weight="bold" fill="${colour}">${mark} ${esc(text)}</text>`);
  parts.push(`<text x="${W - PAD - VALUE_W + 10}" y="${top + 26}" font-size="10" fill="#555">${esc(`${met ? "met" : "missed"}: ${goalText}`)}</text>`);
  y += ROW_H;
}

// Ratio groups: one per benchmark with targets, each on its own scale.
let shown = 0;
for (const run of runs) {
  const cases = run.cases.filter((c) => c && c.shape !== "idle" && isNum(c.target));
  if (cases.length === 0) continue;
  const top = Math.max(...cases.flatMap((c) => [c.target, isNum(c.ratio) ? c.ratio : 0]));
  // Room past the largest target; a bar far past it is cut rather than squeezing the others.
  const maxTarget = Math.max(...cases.map((c) => c.target));
  const max = Math.max(1.25 * maxTarget, Math.min(top * 1.05, 2.5 * maxTarget));
  heading(run);
  axis(max, (t) => `${+t.toFixed(2)}×`, cases.length * ROW_H, 1);
  for (const c of cases) {
    bar({
      title: c.name,
      sub: `${c.shape} · ÷ ${c.baseline ?? "?"}`,
      value: c.ratio,
      goal: c.target,
      atLeast: true,
      max,
      text: isNum(c.ratio) ? `${fmt(c.ratio)}×` : "",
      goalText: `target ≥ ${fmt(c.target)}×`,
    });
    shown++;
  }
}

// Idle memory: resident KiB per connection against the goal.
const kib = (b) => b / 1024;
for (const run of runs) {
  const cases = run.cases.filter((c) => c && c.shape === "idle" && isNum(c.bytes_per_connection));
  if (cases.length === 0) continue;
  const top = Math.max(...cases.flatMap((c) => [c.bytes_per_connection, c.max_bytes_per_connection ?? 0]));
  const max = kib(top) * 1.25;
  const n = cases[0].connections;
  heading(run, isNum(n) ? `${n.toLocaleString("en-US")} connections` : undefined);
  axis(max, (t) => `${+t.toFixed(1)} KiB`, cases.length * ROW_H);
  for (const c of cases) {
    const goal = isNum(c.max_bytes_per_connection) ? c.max_bytes_per_connection : Infinity;
    const heap = isNum(c.heap_bytes_per_connection) ? `, live heap ${fmt(kib(c.heap_bytes_per_connection))} KiB` : "";
    bar({
      title: c.name,
      sub: `resident (VmRSS) per idle connection${heap}`,
      value: kib(c.bytes_per_connection),
      goal: kib(goal),
      atLeast: false,
      max,
      text: `${fmt(kib(c.bytes_per_connection))} KiB`,
      goalText: isNum(c.max_bytes_per_connection) ? `goal ≤ ${fmt(kib(goal), 0)} KiB` : "no goal",
    });
    shown++;
  }
}

if (shown === 0) {
  y += 30;
  parts.push(`<text x="${PAD}" y="${y}" font-size="13" fill="#777">No case with a target in ${esc(dir)}.</text>`);
}
y += PAD;

const svg = `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="${esc(FONT)}" role="img">
<title>wsp benchmarks: measured ratios against the targets of issue 10</title>
<defs>
<pattern id="missed" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="6" height="6" fill="#f4c7c3"/><line x1="0" y1="0" x2="0" y2="6" stroke="${MISSED}" stroke-width="2.5"/>
</pattern>
</defs>
<rect width="${W}" height="${y}" fill="#fff"/>
${parts.join("\n")}
</svg>
`;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, svg);
console.log(`bench-chart: ${files.length} result file(s) from ${dir}, ${shown} bar(s) → ${out}`);
