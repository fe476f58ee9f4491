// Ops-Core dashboard: polls the sidecar's read-only JSON and draws agents, runs and one
// run's DAG. Plain JavaScript and inline SVG, no libraries, no build step.
//
// Cheap with 1,000 runs: the server sends one page of run summaries; only the run on
// screen is laid out, and only again when its steps change (a new run, not a new phase):
// a refresh then just updates classes and labels of the existing SVG nodes.
"use strict";

(() => {
  const POLL_MS = 1500;
  const HIDDEN_POLL_MS = 10000;
  const PAGE = 50;
  const NODE_W = 172, NODE_H = 46, GAP_X = 56, GAP_Y = 16, PAD = 16;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const view = {
    offset: 0,
    phase: "",
    query: "",
    selected: fromHash(),
    selectedStep: null,
    dagKey: null,
    timer: null,
    seq: 0,
  };

  // -- small DOM helpers ------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
  }

  function badge(text, cls) {
    return el("span", { class: `badge ${cls}`, text });
  }

  // -- formatting ------------------------------------------------------------------------

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 10) return `${seconds.toFixed(1)}s`;
    const s = Math.floor(seconds);
    if (s < 120) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
    if (m < 180) return `${m}m`;
    const h = Math.floor(m / 60);
    if (h < 48) return m % 60 && h < 8 ? `${h}h${m % 60}m` : `${h}h`;
    return `${Math.floor(h / 24)}d`;
  }

  function since(iso, nowMs) {
    const t = Date.parse(iso || "");
    if (Number.isNaN(t)) return "–";
    return duration(Math.max(0, (nowMs - t) / 1000)).replace(/\.\ds$/, "s");
  }

  function fromHash() {
    const name = decodeURIComponent(location.hash.replace(/^#/, ""));
    return name || null;
  }

  // -- talking to the sidecar ------------------------------------------------------------

  async function getJSON(path) {
    const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401 || response.status === 403) {
      location.reload(); // the login form, with the reason
      throw new Error("not signed in");
    }
    if (!response.ok) {
      let detail = `${response.status}`;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function listPath() {
    const params = new URLSearchParams({ offset: view.offset, limit: PAGE });
    if (view.phase) params.set("phase", view.phase);
    if (view.query) params.set("q", view.query);
    return `dashboard/api/workflows?${params}`;
  }

  // -- agents ------------------------------------------------------------------------------

  function renderAgents(data) {
    const now = Date.parse(data.now);
    $("agents-count").textContent = `(${data.items.length})`;
    const rows = data.items.map((a) =>
      el(
        "tr",
        {
          "data-agent": a.name,
          title: [`AgentKit: ${a.agentName} (${a.agentId})`, a.lastError ? `last error: ${a.lastError}` : null]
            .filter(Boolean)
            .join("\n"),
        },
        el("td", { text: a.name }),
        el("td", {}, badge(a.paused ? `${a.state} (paused)` : a.state, `state-${a.state}`)),
        el("td", { text: a.currentTask || "–" }),
        el("td", { text: a.lastSeen ? `${since(a.lastSeen, now)} ago` : "never" }),
        el("td", { class: "num", text: a.tasksSucceeded }),
        el("td", { class: "num", text: a.tasksFailed }),
        el("td", {
          class: `ready-${a.ready.status}`,
          title: a.ready.message,
          text: a.ready.reason || a.ready.status,
        }),
      ),
    );
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, text: "No agents yet." })));
    $("agents").tBodies[0].replaceChildren(...rows);
  }

  // -- workflow list -----------------------------------------------------------------------

  // WaitingForApproval is not a run's phase: the runs with a step waiting for a person.
  const PHASES = ["Pending", "Running", "WaitingForApproval", "Suspended", "Succeeded", "Failed", "Cancelled"];
  const STEP_PHASES = ["Succeeded", "Failed", "Cancelled", "Skipped", "Running", "Queued", "WaitingForApproval"];

  function renderPhaseFilter(data) {
    const select = $("phase");
    const options = [el("option", { value: "", text: `All phases (${data.all})` })];
    for (const phase of PHASES) {
      const n = data.phases[phase] || 0;
      if (n || phase === view.phase) {
        options.push(el("option", { value: phase, text: `${phase} (${n})` }));
      }
    }
    const signature = options.map((o) => o.textContent).join("|");
    if (select.dataset.signature !== signature) {
      select.replaceChildren(...options);
      select.dataset.signature = signature;
    }
    select.value = view.phase;
  }

  function progressBar(run) {
    const bar = el("div", { class: "bar" });
    const total = Math.max(run.steps, 1);
    for (const phase of STEP_PHASES) {
      const n = run.stepPhases[phase] || 0;
      if (!n) continue;
      const part = el("span", { class: `phase-${phase}` });
      part.style.width = `${(100 * n) / total}%`;
      bar.append(part);
    }
    return bar;
  }

  function renderList(data) {
    const now = Date.now();
    $("workflows-count").textContent = `(${data.all})`;
    renderPhaseFilter(data);
    const items = data.items.map((run) => {
      const item = el(
        "li",
        { "data-workflow": run.name, class: run.name === view.selected ? "selected" : null },
        el("span", { class: "name", text: run.name, title: run.message || run.name }),
        badge(run.phase, `phase-${run.phase}`),
        el("span", { class: "meta", text: `${run.progress} steps · ${since(run.created, now)} ago` }),
        el("span", { class: "meta", text: run.template ? `template ${run.template}` : "" }),
        run.awaitingApproval && run.awaitingApproval.length
          ? badge(`awaiting approval: ${run.awaitingApproval.join(", ")}`, "phase-WaitingForApproval")
          : null,
        progressBar(run),
      );
      item.addEventListener("click", () => select(run.name));
      return item;
    });
    if (!items.length) items.push(el("li", { class: "empty", text: "No workflows match." }));
    $("runs").replaceChildren(...items);
    const first = data.total ? data.offset + 1 : 0;
    const last = Math.min(data.offset + data.items.length, data.total);
    $("page-info").textContent = `${first}–${last} of ${data.total}`;
    $("prev").disabled = data.offset === 0;
    $("next").disabled = data.offset + data.items.length >= data.total;
  }

  // -- the DAG -----------------------------------------------------------------------------

  // Layered layout: a step's layer is one more than its deepest dependency; within a
  // layer, a few barycenter sweeps (down, then up) reduce edge crossings.
  function layout(steps) {
    const index = new Map(steps.map((s, i) => [s.name, i]));
    const parents = new Map();
    const children = new Map(steps.map((s) => [s.name, []]));
    const rank = new Map();
    steps.forEach((step, i) => {
      const deps = step.dependsOn.filter((d) => index.has(d) && index.get(d) < i);
      parents.set(step.name, deps);
      deps.forEach((d) => children.get(d).push(step.name));
      rank.set(step.name, deps.length ? Math.max(...deps.map((d) => rank.get(d) + 1)) : 0);
    });
    const layers = [];
    for (const step of steps) (layers[rank.get(step.name)] ||= []).push(step.name);
    const pos = new Map();
    const place = () => layers.forEach((layer) => layer.forEach((n, i) => pos.set(n, i)));
    const centre = (names, fallback) =>
      names.length ? names.reduce((sum, n) => sum + pos.get(n), 0) / names.length : fallback;
    place();
    for (let sweep = 0; sweep < 4; sweep++) {
      for (let r = 1; r < layers.length; r++) {
        layers[r].sort((a, b) => centre(parents.get(a), pos.get(a)) - centre(parents.get(b), pos.get(b)));
        place();
      }
      for (let r = layers.length - 2; r >= 0; r--) {
        layers[r].sort((a, b) => centre(children.get(a), pos.get(a)) - centre(children.get(b), pos.get(b)));
        place();
      }
    }
    const tallest = Math.max(1, ...layers.map((l) => l.length));
    const nodes = new Map();
    layers.forEach((layer, r) => {
      const shift = ((tallest - layer.length) * (NODE_H + GAP_Y)) / 2;
      layer.forEach((name, i) => {
        nodes.set(name, { x: PAD + r * (NODE_W + GAP_X), y: PAD + shift + i * (NODE_H + GAP_Y) });
      });
    });
    const edges = [];
    for (const [name, deps] of parents) for (const d of deps) edges.push([d, name]);
    return {
      nodes,
      edges,
      width: PAD * 2 + layers.length * (NODE_W + GAP_X) - GAP_X,
      height: PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y,
    };
  }

  function clip(text, max) {
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  }

  function drawDag(run) {
    const dag = $("dag");
    const key = `${run.uid}|${run.steps.map((s) => `${s.name}<${s.dependsOn.join(",")}`).join(";")}`;
    if (key !== view.dagKey) {
      const shape = layout(run.steps);
      const arrow = svg(
        "marker",
        { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
        svg("path", { d: "M0,0 L10,5 L0,10 z" }),
      );
      const edges = shape.edges.map(([from, to]) => {
        const a = shape.nodes.get(from), b = shape.nodes.get(to);
        const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
        const mid = (x1 + x2) / 2;
        return svg("path", {
          class: "edge",
          "data-from": from,
          d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 2},${y2}`,
          "marker-end": "url(#arrow)",
        });
      });
      const nodes = run.steps.map((step) => {
        const at = shape.nodes.get(step.name);
        const group = svg(
          "g",
          { class: "step", "data-step": step.name, transform: `translate(${at.x},${at.y})` },
          svg("title", {}),
          svg("rect", { width: NODE_W, height: NODE_H, rx: 7, ry: 7 }),
          svg("text", { class: "name", x: 10, y: 19, text: clip(step.name, 22) }),
          svg("text", { class: "sub", x: 10, y: 36 }),
        );
        group.addEventListener("click", () => selectStep(step.name));
        return group;
      });
      dag.replaceChildren(svg("defs", {}, arrow), ...edges, ...nodes);
      dag.setAttribute("width", shape.width);
      dag.setAttribute("height", shape.height);
      dag.setAttribute("viewBox", `0 0 ${shape.width} ${shape.height}`);
      view.dagKey = key;
    }
    const byName = new Map(run.steps.map((s) => [s.name, s]));
    for (const group of dag.querySelectorAll("g.step")) {
      const step = byName.get(group.dataset.step);
      group.setAttribute("class", `step phase-${step.phase}${step.name === view.selectedStep ? " selected" : ""}`);
      group.dataset.phase = step.phase;
      const timing = step.durationSeconds === null ? "" : ` · ${duration(step.durationSeconds)}`;
      group.querySelector("text.sub").textContent = clip(`${step.phase}${timing}`, 26);
      group.querySelector("title").textContent = [
        step.name,
        `phase: ${step.phase}`,
        step.agent ? `agent: ${step.agent}` : null,
        step.attempt ? `attempt: ${step.attempt}` : null,
        step.message,
      ].filter(Boolean).join("\n");
    }
    for (const edge of dag.querySelectorAll("path.edge")) {
      const from = byName.get(edge.dataset.from);
      edge.setAttribute("class", from && from.phase === "Succeeded" ? "edge done" : "edge");
    }
  }

  // -- the run -----------------------------------------------------------------------------

  function renderSteps(run) {
    const now = Date.parse(run.now);
    const starts = run.steps.map((s) => Date.parse(s.startedAt || "")).filter((t) => !Number.isNaN(t));
    const t0 = starts.length ? Math.min(...starts) : now;
    const ends = run.steps.map((s) => (s.startedAt ? Date.parse(s.finishedAt || run.now) : NaN));
    const t1 = Math.max(t0 + 1000, ...ends.filter((t) => !Number.isNaN(t)));
    const rows = run.steps.map((step) => {
      const start = Date.parse(step.startedAt || "");
      const track = el("div", { class: "track" });
      if (!Number.isNaN(start)) {
        const end = Date.parse(step.finishedAt || run.now);
        const bar = el("span", { class: `phase-${step.phase}` });
        bar.style.left = `${(100 * (start - t0)) / (t1 - t0)}%`;
        bar.style.width = `${(100 * Math.max(end - start, 0)) / (t1 - t0)}%`;
        track.append(bar);
      }
      const row = el(
        "tr",
        { "data-step": step.name, class: step.name === view.selectedStep ? "selected" : null },
        el("td", { text: step.name }),
        el("td", {}, badge(step.phase, `phase-${step.phase}`)),
        el("td", { text: step.agent || "–" }),
        el("td", { class: "num", text: step.attempt }),
        el("td", { class: "num", text: Number.isNaN(start) ? "–" : `+${duration((start - t0) / 1000)}` }),
        el("td", { class: "num", text: duration(step.durationSeconds) }),
        el("td", { class: "num", text: step.tokens === null ? "–" : String(step.tokens) }),
        el("td", { class: "num", text: step.cost || "–" }),
        el("td", { class: "timeline" }, track),
        el("td", { class: "message", text: step.message || step.reason || "" }),
      );
      row.addEventListener("click", () => selectStep(step.name));
      return row;
    });
    $("steps").tBodies[0].replaceChildren(...rows);
  }

  function renderRun(run) {
    $("placeholder").hidden = true;
    $("run").hidden = false;
    $("run-name").textContent = run.name;
    const phase = $("run-phase");
    phase.textContent = run.phase;
    phase.className = `badge phase-${run.phase}`;
    $("run-progress").textContent = `${run.progress} steps`;
    $("run-duration").textContent = run.durationSeconds === null ? "" : duration(run.durationSeconds);
    $("run-usage").textContent =
      run.tokens === null ? "" : `${run.tokens} tokens${run.cost ? ` · ${run.cost}` : ""}`;
    const trace = $("run-trace");
    trace.hidden = !run.traceUrl;
    if (run.traceUrl) {
      trace.href = run.traceUrl;
      trace.title = `trace ${run.traceId} in Jaeger`;
    }
    const flags = [];
    const finished = ["Succeeded", "Failed", "Cancelled"].includes(run.phase);
    if (run.suspend && !finished && run.phase !== "Suspended") flags.push("suspend requested");
    if (!run.suspend && run.phase === "Suspended") flags.push("resume requested");
    if (run.cancel && run.phase !== "Cancelled") flags.push("cancel requested");
    if (run.template) flags.push(`template ${run.template}`);
    $("run-flags").textContent = flags.join(" · ");
    $("run-message").textContent = run.message || "";
    drawDag(run);
    renderSteps(run);
  }

  function renderEvents(data, nowIso) {
    const now = Date.parse(nowIso);
    const rows = data.items.slice().reverse().map((e) =>
      el(
        "tr",
        {},
        el("td", { text: `${since(e.time, now)} ago` }),
        el("td", { class: `type-${e.type}`, text: e.type }),
        el("td", { text: e.reason }),
        el("td", { class: "message", text: e.count > 1 ? `${e.message} (×${e.count})` : e.message }),
      ),
    );
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4, text: "No events." })));
    $("events").tBodies[0].replaceChildren(...rows);
  }

  function renderMissing(name) {
    $("placeholder").hidden = false;
    $("placeholder").textContent = `Workflow “${name}” was not found (deleted?).`;
    $("run").hidden = true;
    view.dagKey = null;
  }

  // -- polling -----------------------------------------------------------------------------

  async function refreshRun(seq) {
    const name = view.selected;
    if (!name) return;
    const base = `dashboard/api/workflows/${encodeURIComponent(name)}`;
    let run;
    try {
      run = await getJSON(base);
    } catch (error) {
      if (error.status === 404 && seq === view.seq && name === view.selected) renderMissing(name);
      else throw error;
      return;
    }
    const events = await getJSON(`${base}/events?uid=${encodeURIComponent(run.uid || "")}`);
    if (seq !== view.seq || name !== view.selected) return; // a newer selection won
    renderRun(run);
    renderEvents(events, run.now);
  }

  async function refresh() {
    clearTimeout(view.timer);
    const seq = ++view.seq;
    const live = $("live");
    try {
      const [agents, list] = await Promise.all([
        getJSON("dashboard/api/agents"),
        getJSON(listPath()),
        refreshRun(seq),
      ]);
      if (seq === view.seq) {
        renderAgents(agents);
        renderList(list);
        $("namespace").textContent = list.namespace ? `namespace ${list.namespace}` : "";
      }
      live.className = "live ok";
      $("live-text").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      live.className = "live down";
      $("live-text").textContent = `not updating: ${error.message}`;
    } finally {
      if (seq === view.seq) {
        view.timer = setTimeout(refresh, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
      }
    }
  }

  function select(name) {
    if (name === view.selected) return;
    location.hash = encodeURIComponent(name); // hashchange does the rest
  }

  function selectStep(name) {
    view.selectedStep = view.selectedStep === name ? null : name;
    refresh();
  }

  function start() {
    window.addEventListener("hashchange", () => {
      view.selected = fromHash();
      view.selectedStep = null;
      view.dagKey = null;
      refresh();
    });
    let typing = null;
    $("search").addEventListener("input", (event) => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        view.query = event.target.value.trim();
        view.offset = 0;
        refresh();
      }, 250);
    });
    $("phase").addEventListener("change", (event) => {
      view.phase = event.target.value;
      view.offset = 0;
      refresh();
    });
    $("prev").addEventListener("click", () => {
      view.offset = Math.max(0, view.offset - PAGE);
      refresh();
    });
    $("next").addEventListener("click", () => {
      view.offset += PAGE;
      refresh();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh();
    });
    refresh();
  }

  start();
})();
