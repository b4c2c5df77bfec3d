/* The --mission-html page: renders the embedded report data. Every text from the data goes into the
   page through textContent or setAttribute, never as markup. Mission bodies are built when opened. */
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("mission-data").textContent);
  const MISSIONS = DATA.missions || [];
  const SVGNS = "http://www.w3.org/2000/svg";
  const AUTO_OPEN = 10;
  const MISSION_KNOWN = new Set(["nodeid", "name", "path", "status", "duration", "workspace", "message",
    "steps_total", "steps_passed", "success_rate", "flaky_steps", "steps", "risk_max", "history", "repeats"]);
  const STEP_KNOWN = new Set(["id", "type", "family", "status", "reason", "skip_kind", "counted", "flaky",
    "duration", "attempts", "line", "outputs", "source", "risk", "findings", "depends_on", "inferred"]);
  const ANSWER_SOURCES = new Set(["live", "recorded", "scripted"]);
  const STEP_STATUSES = new Set(["passed", "failed", "blocked", "tolerated", "skipped"]);
  const FAILED_MISSION = new Set(["failed", "error", "xpassed"]);

  function title(m) {
    // A matrix combination is named after its mission, as its test id names it: "CI [python=3.12]".
    const id = m.matrix && typeof m.matrix === "object" ? m.matrix.id : "";
    return id ? `${m.name} [${id}]` : String(m.name);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function add(parent, ...children) {
    for (const c of children) if (c !== null && c !== undefined) parent.append(c);
    return parent;
  }
  function rate(passed, total) {
    if (!total) return "n/a";
    const tenths = Math.floor((1000 * passed) / total);
    return Math.floor(tenths / 10) + "." + (tenths % 10) + "%";
  }
  function seconds(s) {
    return typeof s === "number" ? s.toFixed(2) + "s" : "";
  }
  function number(v) {
    if (typeof v !== "number") return String(v);
    return Number.isInteger(v) ? String(v) : v.toFixed(3);
  }
  function badge(status, text) {
    return el("span", "badge s-" + String(status).replace(/[^a-z]/g, ""), text === undefined ? status : text);
  }
  function firstLine(text) {
    const lines = String(text || "").split("\n").map((l) => l.trim()).filter((l) => l);
    if (lines.length > 1 && /^(tolerated \([^)]*\): )?step '[^']*' \([^)]*\) failed at \S+$/.test(lines[0])) return lines[1];
    return lines[0] || "";
  }
  function answerSource(step) {
    const out = step.outputs || {};
    const s = step.answer_source || out.source;
    return typeof s === "string" && ANSWER_SOURCES.has(s) ? s : "";
  }

  // -- generic, data-driven rendering of whatever a report carries ----------------------------------

  function isFlat(v) {
    return v === null || ["string", "number", "boolean"].includes(typeof v);
  }
  function cellText(key, v) {
    if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number") && /interval|wilson|ci$/i.test(key))
      return "[" + v.map((x) => x.toFixed(3)).join(", ") + "]";
    if (v && typeof v === "object" && typeof v.low === "number" && typeof v.high === "number")
      return "[" + v.low.toFixed(3) + ", " + v.high.toFixed(3) + "]";
    if (isFlat(v)) return v === null ? "" : number(v);
    return JSON.stringify(v);
  }
  // Any value a report carries gets a readable form: text, numbers, intervals, lists, tables of
  // records, and key/value tables for objects, nested as deep as the data is.
  function renderValue(key, v) {
    if (RENDERERS[key] && Array.isArray(v)) return RENDERERS[key](v);
    if (typeof v === "string") return v.includes("\n") || v.length > 120 ? el("pre", "", v) : el("span", "", v);
    if (isFlat(v) || isPair(v)) return el("span", "", cellText(key, v));
    if (Array.isArray(v)) {
      if (!v.length) return el("span", "meta", "none");
      if (v.every((x) => x && typeof x === "object" && !Array.isArray(x))) return table(v);
      if (v.every((x) => isFlat(x))) return el("span", "", v.map((x) => cellText(key, x)).join(", "));
    }
    if (v && typeof v === "object" && !Array.isArray(v)) return kv(v);
    return el("pre", "", JSON.stringify(v, null, 2));
  }
  function isPair(x) {
    return (Array.isArray(x) && x.length === 2 && x.every((y) => typeof y === "number")) ||
      (x && typeof x === "object" && typeof x.low === "number" && typeof x.high === "number");
  }
  function kv(obj) {
    const t = el("table", "kv");
    for (const [k, v] of Object.entries(obj)) {
      const tr = add(el("tr"), el("th", "", k));
      const td = el("td");
      if (isFlat(v) || isPair(v)) td.textContent = cellText(k, v);
      else td.append(renderValue(k, v));
      t.append(add(tr, td));
    }
    return t;
  }
  function table(rows) {
    const keys = [];
    for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
    const t = el("table", "rows");
    const head = el("tr");
    for (const k of keys) head.append(el("th", "", k));
    t.append(head);
    for (const r of rows) {
      const tr = el("tr");
      const verdict = r.verdict || r.decision;
      if (typeof verdict === "string") tr.className = "v-" + verdict.toLowerCase().replace(/[^a-z]/g, "");
      for (const k of keys) {
        const v = r[k];
        const td = el("td");
        if (v === undefined) td.textContent = "";
        else if (isFlat(v) || isPair(v)) {
          const text = cellText(k, v);
          if (text.length > 200 || text.includes("\n")) td.append(el("pre", "", text));
          else td.textContent = text;
        } else td.append(renderValue(k, v));
        tr.append(td);
      }
      t.append(tr);
    }
    return t;
  }
  function messages(list) {
    const box = el("div", "transcript");
    for (const m of list) {
      if (!m || typeof m !== "object") { box.append(el("pre", "", JSON.stringify(m))); continue; }
      const role = String(m.role || m.type || "message");
      const div = el("div", "msg role-" + role.toLowerCase().replace(/[^a-z]/g, ""));
      div.append(el("div", "role", role));
      const content = m.content !== undefined ? m.content : m.text;
      if (content !== undefined && content !== null)
        div.append(typeof content === "string" ? el("pre", "", content) : renderValue("content", content));
      for (const [k, v] of Object.entries(m))
        if (!["role", "type", "content", "text"].includes(k)) add(div, el("div", "role", k), renderValue(k, v));
      box.append(div);
    }
    return box;
  }
  // Named shapes; anything else falls back to the generic forms above.
  const RENDERERS = { messages: messages, transcript: messages, conversation: messages };

  function section(title, body) {
    return add(el("div", "section"), el("h3", "", title), body);
  }

  // -- repeats --------------------------------------------------------------------------------------

  function interval(v) {
    return Array.isArray(v) && v.length === 2 ? cellText("interval", v) : "n/a";
  }
  function fixed(v, digits) {
    return typeof v === "number" ? v.toFixed(digits) : "n/a";
  }
  // A repeated mission's numbers, as the terminal section shows them: k/n with the Wilson interval,
  // pass@k and pass^k, flaky steps, each repeat's reward and the judge's score of it, each step's rates.
  function repeatsBlock(r) {
    const box = el("div", "repeats");
    const rel = r.mission || {};
    const k = rel.k ?? 2;
    add(box, el("p", "headline", `${r.n} repeats: ${rel.passed}/${rel.total} passed (${rate(rel.passed, rel.total)}), ` +
      `95% CI ${interval(rel.interval)} · pass@${k} ${fixed(rel.pass_at_k, 3)} · pass^${k} ${fixed(rel.pass_hat_k, 3)}`));
    const pooled = r.steps_pooled;
    if (pooled && typeof pooled.total === "number") box.append(el("p", "", `steps over the repeats: ${pooled.passed}/${pooled.total} (${rate(pooled.passed, pooled.total)}), ` +
      `95% CI ${interval(pooled.interval)}`));
    const flaky = (r.steps || []).filter((row) => row.flaky);
    if (flaky.length)
      box.append(el("p", "flaky", "flaky over the repeats: " + flaky.map((row) => `${row.id} ${row.passed}/${row.total}`).join(", ")));
    const judge = r.judge && typeof r.judge === "object" ? r.judge : null;
    const scores = judge && Array.isArray(judge.scores) ? judge.scores : null;
    if (judge && scores) {
      const about = [judge.method, judge.model, judge.source].filter((x) => x).join(", ");
      box.append(el("p", "judge", `judge (${about}): mean ${fixed(judge.mean_score, 3)}, best r${(judge.best_index ?? 0) + 1}` +
        (typeof judge.order_sensitivity === "number" ? `, order sensitivity ${fixed(judge.order_sensitivity, 3)}` : "") +
        (judge.rejudged_run ? ` · rejudged the stored run ${judge.rejudged_run}` : "")));
      if (judge.warning) box.append(el("p", "flaky", judge.warning));
    } else if (judge && judge.status) {
      box.append(el("p", "judge", `judge: ${judge.status}: ${firstLine(judge.reason)}`));
    }
    const rewards = Array.isArray(r.rewards) ? r.rewards : [];
    if (rewards.length || scores) {
      const rows = [];
      for (let i = 0; i < r.n; i++) {
        const row = { repeat: "r" + (i + 1) };
        const rw = rewards.find((x) => x.repeat === i + 1);
        if (rw) Object.assign(row, { reward: fixed(rw.reward, 3), success: fixed(rw.success, 3),
          efficiency: fixed(rw.efficiency, 3), quality: fixed(rw.quality, 3) + (rw.quality_from ? ` (${rw.quality_from})` : "") });
        if (scores) Object.assign(row, { "judge score": fixed(scores[i], 2), "judge explanation": (judge.explanations || [])[i] ?? "" });
        rows.push(row);
      }
      const t = table(rows);
      t.classList.add("per-repeat");
      box.append(t);
    }
    const steps = (r.steps || []).map((row) => ({ step: row.id, "k/n": `${row.passed}/${row.total}`, rate: rate(row.passed, row.total),
      "95% CI": interval(row.interval), [`pass@${k}`]: fixed(row.pass_at_k, 3), [`pass^${k}`]: fixed(row.pass_hat_k, 3),
      flaky: row.flaky ? "yes" : "" }));
    if (steps.length) {
      const t = table(steps);
      t.classList.add("per-step");
      box.append(t);
    }
    return box;
  }

  // -- history chart --------------------------------------------------------------------------------

  function historyPoints(list) {
    const pts = [];
    for (const run of list) {
      if (!run || typeof run !== "object") continue;
      let r = ["success_rate", "rate", "step_success_rate", "mission_success_rate"].map((k) => run[k]).find((x) => typeof x === "number");
      if (r === undefined && typeof run.passed === "number" && typeof run.total === "number" && run.total > 0) r = run.passed / run.total;
      if (r === undefined) continue;
      const when = run.when || run.created || run.time || run.date || run.started || run.run || "";
      pts.push({ rate: r, label: String(when) });
    }
    return pts;
  }
  function historyChart(list) {
    const pts = historyPoints(list);
    if (!pts.length) return renderValue("history", list);
    const w = 320, h = 90, pad = 22;
    const s = svg("svg", { class: "chart", width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img" });
    const x = (i) => pad + (pts.length === 1 ? (w - 2 * pad) / 2 : (i * (w - 2 * pad)) / (pts.length - 1));
    const y = (r) => h - pad + 8 - r * (h - pad - 4);
    s.append(svg("line", { class: "axis", x1: pad, y1: y(0), x2: w - 4, y2: y(0) }));
    s.append(svg("line", { class: "axis", x1: pad, y1: y(1), x2: w - 4, y2: y(1) }));
    const t0 = svg("text", { x: 0, y: y(0) + 3 }); t0.textContent = "0%"; s.append(t0);
    const t1 = svg("text", { x: 0, y: y(1) + 3 }); t1.textContent = "100%"; s.append(t1);
    s.append(svg("polyline", { class: "line", points: pts.map((p, i) => `${x(i)},${y(p.rate)}`).join(" ") }));
    pts.forEach((p, i) => {
      const c = svg("circle", { class: "dot", cx: x(i), cy: y(p.rate), r: 3 });
      const title = svg("title", {});
      title.textContent = (p.label ? p.label + ": " : "") + (100 * p.rate).toFixed(1) + "%";
      c.append(title);
      s.append(c);
    });
    return s;
  }

  // -- header ---------------------------------------------------------------------------------------

  function renderHeader() {
    const t = DATA.totals || {};
    const box = document.getElementById("totals");
    const stat = (big, small) => add(el("div"), el("div", "big", big), el("div", "meta", small));
    add(box,
      stat(`${t.missions_passed ?? 0}/${t.missions ?? 0}`, `missions passed (${rate(t.missions_passed, t.missions)})` +
        (t.missions_skipped ? `, ${t.missions_skipped} skipped` : "")),
      stat(`${t.steps_passed ?? 0}/${t.steps_counted ?? 0}`, `steps passed (${rate(t.steps_passed, t.steps_counted)})` +
        (t.steps_not_counted ? `, ${t.steps_not_counted} not counted` : "")));
    const gate = DATA.gate || {};
    if (gate.message) add(box, el("div", "gate " + (gate.passed === false ? "below" : "meets"), gate.message));
    const meta = document.getElementById("meta");
    const versions = Object.entries(DATA.versions || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    meta.textContent = [DATA.created, seconds(DATA.duration), versions, (DATA.safety || []).join("; ")].filter((x) => x).join(" · ");
    if (Array.isArray(DATA.history) && DATA.history.length > 1) add(document.getElementById("run-history"), section("Run history", historyChart(DATA.history)));
  }

  // -- mission list ---------------------------------------------------------------------------------

  function renderList() {
    const main = document.getElementById("missions");
    const frag = document.createDocumentFragment();
    let opened = 0;
    MISSIONS.forEach((m, i) => {
      const d = el("details", "mission");
      d.id = "m" + i;
      d.dataset.index = String(i);
      d.dataset.status = String(m.status);
      const sum = el("summary");
      add(sum, badge(m.status), el("span", "name", title(m)), el("span", "path", m.path),
        el("span", "num", `${m.steps_passed}/${m.steps_total} steps · ${rate(m.steps_passed, m.steps_total)}`),
        el("span", "num", seconds(m.duration)));
      if (typeof m.risk_max === "number" && m.risk_max > 0) sum.append(el("span", "num", "risk " + m.risk_max));
      if (m.repeats && typeof m.repeats === "object") {
        const rel = m.repeats.mission || {};
        sum.append(el("span", "num", `${m.repeats.n ?? ""} repeats` +
          (typeof rel.passed === "number" ? ` · ${rel.passed}/${rel.total} passed` : "") +
          (rel.interval ? " " + cellText("interval", rel.interval) : "")));
      }
      if ((m.flaky_steps || []).length) sum.append(el("span", "flaky", "flaky: " + m.flaky_steps.join(", ")));
      const judged = m.repeats && m.repeats.judge;
      if (judged && typeof judged.mean_score === "number") sum.append(el("span", "num", "judge mean " + judged.mean_score.toFixed(2)));
      d.append(sum);
      d.addEventListener("toggle", () => { if (d.open) renderMission(d, m, i); });
      if (FAILED_MISSION.has(m.status) && opened < AUTO_OPEN) { d.open = true; opened++; }
      frag.append(d);
    });
    main.append(frag);
    if (!MISSIONS.length) main.append(el("p", "meta", "No mission ran."));
  }

  function renderMission(d, m, i) {
    if (d.dataset.rendered) return;
    d.dataset.rendered = "1";
    const body = el("div", "mission-body");
    if (m.message && m.status !== "passed") body.append(el("pre", "message", m.message));
    // One run is no history yet; from two on, the chart shows the step success rate of each kept run.
    if (Array.isArray(m.history) && m.history.length > 1) body.append(section("History", historyChart(m.history)));
    if (m.repeats && typeof m.repeats === "object") body.append(section("Repeats", repeatsBlock(m.repeats)));
    for (const [k, v] of Object.entries(m)) if (!MISSION_KNOWN.has(k)) body.append(section(k.replace(/_/g, " "), renderValue(k, v)));
    const steps = m.steps || [];
    if (steps.length) {
      const legend = el("div", "legend");
      add(legend, "dependency graph: ", el("span", "declared", "depends_on"), " · ", el("span", "inferred", "inferred"), " · click a step to see it");
      const box = el("div", "graph");
      body.append(legend, box);
      try { renderGraph(box, m, i); } catch (err) { box.append(el("pre", "", "graph layout failed: " + err)); }
      body.append(stepTable(m, i));
    }
    if (m.workspace) body.append(el("div", "meta", "workspace: " + m.workspace));
    d.append(body);
  }

  function graphEdges(m) {
    const ids = new Set((m.steps || []).map((s) => s.id));
    const edges = [];
    for (const s of m.steps || []) {
      for (const dep of s.depends_on || []) if (ids.has(dep)) edges.push({ from: dep, to: s.id, inferred: false, why: "depends_on" });
      for (const dep of s.inferred || []) if (ids.has(dep.step)) edges.push({ from: dep.step, to: s.id, inferred: true, why: dep.why || "inferred" });
    }
    return edges;
  }

  function renderGraph(box, m, i) {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 14, ranksep: 36, marginx: 10, marginy: 10 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const s of m.steps) g.setNode(s.id, { width: Math.max(56, 7 * String(s.id).length + 22), height: 28 });
    const edges = graphEdges(m);
    for (const e of edges) g.setEdge(e.from, e.to, {});
    dagre.layout(g);
    const size = g.graph();
    const root = svg("svg", { width: Math.ceil(size.width), height: Math.ceil(size.height), role: "img" });
    root.setAttribute("aria-label", "dependency graph of " + m.name);
    const defs = svg("defs", {});
    for (const kind of ["declared", "inferred"]) {
      const marker = svg("marker", { id: `arrow-${kind}-${i}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
      marker.append(svg("path", { class: "arrow " + kind, d: "M0,0 L10,5 L0,10 z" }));
      defs.append(marker);
    }
    root.append(defs);
    for (const e of edges) {
      const pts = g.edge(e.from, e.to).points;
      const kind = e.inferred ? "inferred" : "declared";
      const path = svg("path", { class: "edge " + kind, d: "M" + pts.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" L"), "marker-end": `url(#arrow-${kind}-${i})` });
      path.dataset.from = e.from;
      path.dataset.to = e.to;
      const title = svg("title", {});
      title.textContent = `${e.from} → ${e.to} (${e.why})`;
      path.append(title);
      root.append(path);
    }
    for (const s of m.steps) {
      const n = g.node(s.id);
      const status = STEP_STATUSES.has(s.status) ? s.status : "other";
      const node = svg("g", { class: "node g-" + status, transform: `translate(${(n.x - n.width / 2).toFixed(1)},${(n.y - n.height / 2).toFixed(1)})`, tabindex: 0 });
      node.dataset.step = s.id;
      node.append(svg("rect", { width: n.width, height: n.height }));
      const label = svg("text", { x: n.width / 2, y: n.height / 2 });
      label.textContent = s.id;
      const title = svg("title", {});
      title.textContent = `${s.id} (${s.type}): ${s.status}` + (s.reason ? "\n" + firstLine(s.reason) : "");
      node.append(label, title);
      node.addEventListener("click", () => focusStep(i, s.id));
      node.addEventListener("keydown", (ev) => { if (ev.key === "Enter") focusStep(i, s.id); });
      root.append(node);
    }
    box.append(root);
  }

  function stepTable(m, i) {
    const steps = m.steps || [];
    const answers = steps.some((s) => answerSource(s));
    const t = el("table", "steps");
    const head = el("tr");
    for (const h of ["", "step", "type", "status", "reason", "time", "attempts", "risk", "rules", ...(answers ? ["answer"] : []), "after"])
      head.append(el("th", "", h));
    t.append(head);
    steps.forEach((s) => {
      const tr = el("tr", "step");
      tr.dataset.step = s.id;
      tr.dataset.status = s.status;
      const toggle = el("button", "toggle", "▸");
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", "false");
      toggle.setAttribute("aria-label", "details of " + s.id);
      const rules = [...new Set((s.findings || []).map((f) => f.rule).filter((r) => r))];
      const reps = s.repeats && typeof s.repeats === "object" && typeof s.repeats.total === "number" ? ` ${s.repeats.passed}/${s.repeats.total}` : "";
      const status = s.status + reps + (s.flaky ? " (flaky)" : "") + (s.counted === false ? " (not counted)" : "");
      const after = [...(s.depends_on || []), ...(s.inferred || []).map((d) => d.step + " (inferred)")];
      add(tr, add(el("td"), toggle), el("td", "name", s.id), el("td", "", s.type), add(el("td"), badge(s.status, status)),
        el("td", "reason", firstLine(s.reason)), el("td", "n", seconds(s.duration)), el("td", "n", s.attempts),
        el("td", "n", typeof s.risk === "number" ? s.risk : ""), el("td", "", rules.join(", ")),
        ...(answers ? [el("td", "", answerSource(s))] : []), el("td", "", after.join(", ")));
      const detail = el("tr", "detail hidden");
      const cell = el("td");
      cell.colSpan = answers ? 11 : 10;
      detail.append(cell);
      tr.addEventListener("click", () => toggleStep(tr, detail, cell, s));
      t.append(tr, detail);
    });
    t.dataset.mission = String(i);
    return t;
  }

  function toggleStep(tr, detail, cell, s, forceOpen) {
    const open = forceOpen || detail.classList.contains("hidden");
    if (open && !cell.childNodes.length) cell.append(stepDetail(s));
    detail.classList.toggle("hidden", !open);
    const button = tr.querySelector("button.toggle");
    button.textContent = open ? "▾" : "▸";
    button.setAttribute("aria-expanded", String(open));
  }

  function stepDetail(s) {
    const box = el("div", "step-detail");
    if (s.reason) box.append(section("reason", el("pre", "output", s.reason)));
    const outputs = s.outputs || {};
    const keys = Object.keys(outputs);
    if (keys.length) {
      const out = el("table", "kv outputs");
      for (const k of keys) out.append(add(el("tr"), el("th", "", k), add(el("td"), renderValue(k, outputs[k]))));
      box.append(section("outputs", out));
    }
    if ((s.findings || []).length) box.append(section("safety findings", table(s.findings)));
    for (const [k, v] of Object.entries(s)) if (!STEP_KNOWN.has(k)) box.append(section(k.replace(/_/g, " "), renderValue(k, v)));
    const where = [s.source ? s.source : "", s.line ? "line " + s.line : "", s.family ? "family " + s.family : ""].filter((x) => x).join(", ");
    if (where) box.append(el("div", "meta", where));
    if (!box.childNodes.length) box.append(el("div", "meta", "nothing more recorded for this step"));
    return box;
  }

  function focusStep(i, id) {
    const d = document.getElementById("m" + i);
    if (!d) return;
    if (!d.open) { d.open = true; renderMission(d, MISSIONS[i], i); }
    const table = d.querySelector("table.steps");
    for (const tr of table.querySelectorAll("tr.step")) {
      const hit = tr.dataset.step === id;
      tr.classList.toggle("focus", hit);
      if (hit) {
        const detail = tr.nextElementSibling;
        toggleStep(tr, detail, detail.firstElementChild, MISSIONS[i].steps.find((s) => s.id === id), true);
        tr.scrollIntoView({ block: "center" });
      }
    }
  }

  // -- controls -------------------------------------------------------------------------------------

  function applyFilter() {
    const text = document.getElementById("filter").value.trim().toLowerCase();
    const failedOnly = document.getElementById("only-failed").checked;
    for (const d of document.querySelectorAll("details.mission")) {
      const m = MISSIONS[Number(d.dataset.index)];
      const hay = (title(m) + " " + m.path + " " + m.status).toLowerCase();
      const show = (!text || hay.includes(text)) && (!failedOnly || FAILED_MISSION.has(m.status));
      d.classList.toggle("hidden", !show);
    }
  }

  function openAll(open) {
    for (const d of document.querySelectorAll("details.mission:not(.hidden)")) {
      if (open) renderMission(d, MISSIONS[Number(d.dataset.index)], Number(d.dataset.index));
      d.open = open;
    }
  }

  renderHeader();
  renderList();
  for (const d of document.querySelectorAll("details.mission[open]")) renderMission(d, MISSIONS[Number(d.dataset.index)], Number(d.dataset.index));
  document.getElementById("filter").addEventListener("input", applyFilter);
  document.getElementById("only-failed").addEventListener("change", applyFilter);
  document.getElementById("expand-all").addEventListener("click", () => openAll(true));
  document.getElementById("collapse-all").addEventListener("click", () => openAll(false));
  const hash = /^#m(\d+)(?:-(.+))?$/.exec(location.hash);
  if (hash && MISSIONS[Number(hash[1])]) {
    if (hash[2]) focusStep(Number(hash[1]), decodeURIComponent(hash[2]));
    else { const d = document.getElementById("m" + hash[1]); d.open = true; d.scrollIntoView(); }
  }
  document.body.dataset.ready = "1";
})();
