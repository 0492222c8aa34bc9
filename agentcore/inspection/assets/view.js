// agentcore run view: folds the embedded per-seq RFC 6902 diffs to show the state at any seq.
// Run data is only ever inserted with textContent (never innerHTML) and object keys are set as
// own properties, so no string from the run can become markup, script or a prototype change.
// Unicode bidi controls in run data are shown as \u202e text (shown()), so no string can reorder
// what is displayed around or inside it ("Trojan Source").
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  var events = data.events, diffs = data.diffs, last = events.length, CHECKPOINT = 100;
  var has = function (o, k) { return Object.prototype.hasOwnProperty.call(o, k); };
  var $ = function (id) { return document.getElementById(id); };

  var BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
  function shown(s) {
    return String(s).replace(BIDI, function (c) { return "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"); });
  }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = shown(text);
    return n;
  }
  function clone(v) { return v === undefined ? v : JSON.parse(JSON.stringify(v)); }
  function clip(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "\u2026" : s; }
  var DIGEST = /sha256:[0-9a-f]{64}/g;
  // text with every stored artifact id turned into a button that opens the artifact's preview
  function linked(tag, cls, text) {
    var n = el(tag, cls), s = String(text === null || text === undefined ? "" : text), at = 0, m;
    DIGEST.lastIndex = 0;
    while ((m = DIGEST.exec(s)) !== null) {
      if (!has(data.artifacts, m[0])) continue;
      if (m.index > at) n.appendChild(document.createTextNode(shown(s.slice(at, m.index))));
      n.appendChild(artifactButton(m[0], m[0]));
      at = m.index + m[0].length;
    }
    if (at < s.length) n.appendChild(document.createTextNode(shown(s.slice(at))));
    return n;
  }
  function artifactButton(id, label) {
    var b = el("button", "art-link", label);
    b.type = "button"; b.dataset.artifact = id; b.title = "show artifact " + id;
    b.addEventListener("click", function () { openArtifact(id); });
    return b;
  }
  function openArtifact(id) {
    var d = artifactIndex[id];
    if (!d) return;
    d.open = true; d.classList.add("flash"); d.scrollIntoView({ block: "center" });
    setTimeout(function () { d.classList.remove("flash"); }, 900);
  }

  // ---- RFC 6902 -------------------------------------------------------------------------
  function tokens(path) {
    if (path === "") return [];
    return path.split("/").slice(1).map(function (t) { return t.replace(/~1/g, "/").replace(/~0/g, "~"); });
  }
  function child(node, key) {
    if (Array.isArray(node)) return node[Number(key)];
    return node !== null && typeof node === "object" && has(node, key) ? node[key] : undefined;
  }
  function getAt(doc, path) {
    var t = tokens(path), cur = doc;
    for (var i = 0; i < t.length; i++) cur = child(cur, t[i]);
    return cur;
  }
  function setOwn(obj, key, value) {
    Object.defineProperty(obj, key, { value: value, writable: true, enumerable: true, configurable: true });
  }
  function applyOp(doc, op) {
    if (op.op === "test") return doc;
    if (op.op === "move" || op.op === "copy") {
      var moved = clone(getAt(doc, op.from));
      if (op.op === "move") doc = applyOp(doc, { op: "remove", path: op.from });
      return applyOp(doc, { op: "add", path: op.path, value: moved });
    }
    var t = tokens(op.path);
    if (t.length === 0) return op.op === "remove" ? null : clone(op.value);
    var parent = doc;
    for (var i = 0; i < t.length - 1; i++) parent = child(parent, t[i]);
    if (parent === undefined || parent === null) throw new Error("no parent for " + op.path);
    var key = t[t.length - 1];
    if (Array.isArray(parent)) {
      var idx = key === "-" ? parent.length : Number(key);
      if (op.op === "add") parent.splice(idx, 0, clone(op.value));
      else if (op.op === "remove") parent.splice(idx, 1);
      else parent[idx] = clone(op.value);
    } else if (op.op === "remove") {
      delete parent[key];
    } else {
      setOwn(parent, key, clone(op.value));
    }
    return doc;
  }

  var checkpoints = {}; checkpoints[0] = clone(data.initial);
  var cur = { seq: 0, doc: clone(data.initial) };
  function stateAt(k) {
    if (k < cur.seq) {
      var base = Math.floor(k / CHECKPOINT) * CHECKPOINT;
      while (!has(checkpoints, base)) base -= CHECKPOINT;
      cur = { seq: base, doc: clone(checkpoints[base]) };
    }
    while (cur.seq < k) {
      var ops = diffs[cur.seq];
      for (var i = 0; i < ops.length; i++) cur.doc = applyOp(cur.doc, ops[i]);
      cur.seq += 1;
      if (cur.seq % CHECKPOINT === 0 && !has(checkpoints, cur.seq)) checkpoints[cur.seq] = clone(cur.doc);
    }
    return cur.doc;
  }

  // ---- rendering -----------------------------------------------------------------------
  var selected = -1, items = [];
  function seqButton(seq, label) {
    var b = el("button", "chip", label);
    b.type = "button";
    b.addEventListener("click", function () { select(seq); });
    return b;
  }
  function row(table, cells, head) {
    var tr = el("tr");
    cells.forEach(function (c) {
      var td = el(head ? "th" : "td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "" : shown(c);
      tr.appendChild(td);
    });
    table.appendChild(tr);
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function buildTimeline() {
    var ol = $("timeline");
    var start = el("li"); start.dataset.seq = "0";
    start.appendChild(el("span", "seqno", "0")); start.appendChild(el("span", "badge", "start"));
    start.appendChild(el("span", "summary muted", "empty state"));
    items.push(start);
    events.forEach(function (ev) {
      var li = el("li"); li.dataset.seq = String(ev.seq); li.dataset.type = ev.type;
      li.appendChild(el("span", "seqno", ev.seq));
      li.appendChild(el("span", "badge t-" + ev.type.replace(/[^a-z_]/g, ""), ev.type));
      var s = el("span", "summary", ev.summary); s.title = shown(ev.summary);
      li.appendChild(s);
      items.push(li);
    });
    items.forEach(function (li) {
      li.addEventListener("click", function () { select(Number(li.dataset.seq)); });
      ol.appendChild(li);
    });
  }

  function showEvent(k) {
    var meta = $("event-meta"), pre = $("event-json");
    clear(meta);
    if (k === 0) { meta.appendChild(el("span", null, "seq 0: the empty state before the first event")); clear(pre); return; }
    var ev = events[k - 1];
    meta.appendChild(el("strong", null, "seq " + ev.seq + " \u00b7 " + ev.type));
    meta.appendChild(el("span", null, ev.event.at));
    if (ev.caused_by !== null && ev.caused_by !== undefined) {
      var c = el("span", null, "caused by "); c.appendChild(seqButton(ev.caused_by, "seq " + ev.caused_by)); meta.appendChild(c);
    }
    clear(pre);
    pre.appendChild(linked("span", null, JSON.stringify(ev.event, null, 2)));
  }

  function showDiff(k) {
    var table = $("diff"); clear(table);
    var ops = k === 0 ? [] : diffs[k - 1];
    if (!ops.length) { row(table, ["no change"]); return; }
    row(table, ["op", "path", "value"], true);
    ops.forEach(function (op) {
      var opCell = el("span", "op-" + String(op.op).replace(/[^a-z]/g, ""), op.op);
      var value = has(op, "value") ? clip(JSON.stringify(op.value), 400) : (op.from ? "from " + op.from : "");
      row(table, [opCell, el("code", null, op.path), linked("code", null, value)]);
    });
  }

  var artifactIndex = {}, stepNodes = {}, STORY = 12;
  // a fact's story, newest first, following one stored link per event (never a copied chain)
  function story(seq) {
    var out = [], seen = {}, cur = seq;
    while (cur !== null && cur !== undefined && !has(seen, String(cur))) {
      var link = has(data.links, String(cur)) ? data.links[String(cur)] : null;
      if (!link) { out.push({ seq: cur, type: "state_patched" }); break; }
      if (out.length === STORY) { out.push({ more: "more links (agentcore why shows them all)" }); break; }
      seen[String(cur)] = true;
      out.push({ seq: cur, type: link.type, why: link.why, artifact: link.artifact });
      cur = link.next;
    }
    return out;
  }
  function showFacts(state) {
    var table = $("facts"); clear(table);
    var facts = state.known_facts || {};
    var keys = Object.keys(facts).sort(function (a, b) { return facts[a].seq - facts[b].seq || (a < b ? -1 : 1); });
    if (!keys.length) { row(table, ["no facts yet"]); return; }
    row(table, ["key", "value", "source", "provenance"], true);
    keys.forEach(function (key) {
      var f = facts[key], chain = el("div");
      story(f.seq).forEach(function (link) {
        if (link.more) { chain.appendChild(el("span", "muted", "\u2026 " + link.more)); return; }
        var b = seqButton(link.seq, link.seq + " " + link.type); b.title = shown(link.why || ""); chain.appendChild(b);
        if (link.artifact && has(data.artifacts, link.artifact)) chain.appendChild(artifactButton(link.artifact, "artifact " + link.artifact.slice(7, 19)));
      });
      var art = f.artifact_id;
      if (art && has(data.artifacts, art) && !chain.querySelector('[data-artifact="' + art + '"]')) {
        chain.appendChild(artifactButton(art, "artifact " + art.slice(7, 19)));
      }
      row(table, [el("code", null, key), linked("span", null, f.value), f.source + (f.confidence < 1 ? " (" + f.confidence + ")" : ""), chain]);
    });
  }

  function showState(state) {
    var box = $("state-box");
    $("state").textContent = box.open ? shown(JSON.stringify(state, null, 2)) : "";
  }

  function buildArtifacts() {
    var root = $("artifacts"), ids = Object.keys(data.artifacts);
    if (!ids.length) { root.appendChild(el("span", "muted", "no artifacts")); return; }
    ids.forEach(function (id) {
      var a = data.artifacts[id], d = el("details", "artifact"), s = el("summary");
      s.appendChild(el("code", null, id.slice(0, 19) + "\u2026"));
      s.appendChild(el("span", null, " " + a.label));
      s.appendChild(el("span", "muted", " \u00b7 " + a.media_type + " \u00b7 " + a.size + " bytes" + (a.truncated ? " (first part shown)" : "")));
      d.appendChild(s);
      d.appendChild(linked("pre", null, a.preview));
      artifactIndex[id] = d;
      root.appendChild(d);
    });
  }

  function select(k) {
    k = Math.max(0, Math.min(last, k | 0));
    if (selected >= 0 && items[selected]) items[selected].classList.remove("sel");
    selected = k;
    items[k].classList.add("sel");
    var r = items[k].getBoundingClientRect(), box = $("timeline").getBoundingClientRect();
    if (r.top < box.top || r.bottom > box.bottom) items[k].scrollIntoView({ block: "nearest" });
    $("seq").value = String(k);
    $("seq-label").textContent = "seq " + k + " / " + last;
    var state = stateAt(k);
    showEvent(k); showDiff(k); showFacts(state); showState(state);
    document.body.dataset.seq = String(k);
    try { history.replaceState(null, "", "#seq=" + k); } catch (e) { /* file: URLs may refuse */ }
    document.body.dataset.selected = String(k);
  }

  buildTimeline();
  buildArtifacts();
  drawPlan();
  linkOutcome();
  $("seq").max = String(last);
  $("seq").addEventListener("input", function () { select(Number($("seq").value)); });
  $("prev").addEventListener("click", function () { select(selected - 1); });
  $("next").addEventListener("click", function () { select(selected + 1); });
  $("state-box").addEventListener("toggle", function () { showState(stateAt(selected)); });
  function filterText(q) {
    q = q.toLowerCase();
    items.forEach(function (li) { li.classList.toggle("hidden", q !== "" && li.textContent.toLowerCase().indexOf(q) < 0); });
  }
  $("filter").addEventListener("input", function () { filterText($("filter").value); });

  // ---- the plan as a DAG (inline SVG, built with DOM calls only) ------------------------
  function svg(tag, attrs, text) {
    // the SVG namespace is read from the page's own <svg> element (the script names no URL)
    var n = document.createElementNS($("dag-svg").namespaceURI, tag);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) n.textContent = shown(text);
    return n;
  }
  function stepEvents(id) {
    return events.filter(function (ev) { return ev.event.step_id === id; }).map(function (ev) { return ev.seq; });
  }
  function filterStep(id) {
    var keep = id === null ? null : stepEvents(id);
    items.forEach(function (li, i) { li.classList.toggle("hidden", keep !== null && i > 0 && keep.indexOf(i) < 0); });
    Object.keys(stepNodes).forEach(function (k) { stepNodes[k].classList.toggle("chosen", k === id); });
    $("clear-filter").hidden = id === null;
    document.body.dataset.step = id === null ? "" : id;
    if (keep && keep.length) select(keep[0]);
  }
  function drawPlan() {
    var plan = data.plan;
    if (!plan) return;
    var W = 190, H = 58, GX = 50, GY = 16, root = $("dag-svg");
    var width = plan.layers * (W + GX) - GX + 20, height = plan.rows * (H + GY) - GY + 20;
    [["width", width], ["height", height], ["viewBox", "0 0 " + width + " " + height]].forEach(function (a) { root.setAttribute(a[0], String(a[1])); });
    root.appendChild(svg("title", {}, "plan of " + plan.steps.length + " steps"));
    var pos = {};
    plan.steps.forEach(function (st) { pos[st.id] = { x: 10 + st.layer * (W + GX), y: 10 + st.row * (H + GY) }; });
    plan.steps.forEach(function (st) {
      st.after.forEach(function (dep) {
        var a = pos[dep], b = pos[st.id];
        root.appendChild(svg("path", { "class": "edge", d: "M" + (a.x + W) + "," + (a.y + H / 2) + " C" + (a.x + W + GX / 2) + "," + (a.y + H / 2) + " " + (b.x - GX / 2) + "," + (b.y + H / 2) + " " + b.x + "," + (b.y + H / 2) }));
      });
    });
    plan.steps.forEach(function (st) {
      var p = pos[st.id], g = svg("g", { "class": "step st-" + String(st.status).replace(/[^a-z_]/g, ""), transform: "translate(" + p.x + "," + p.y + ")", tabindex: 0 });
      g.setAttribute("data-step", st.id); g.setAttribute("data-status", st.status); g.setAttribute("data-attempts", String(st.attempts));
      g.appendChild(svg("title", {}, st.id + ": " + st.description + (st.error ? "\n" + st.error : "")));
      g.appendChild(svg("rect", { width: W, height: H, rx: 7 }));
      g.appendChild(svg("text", { x: 10, y: 20, "class": "step-id" }, clip(st.id, 24)));
      g.appendChild(svg("text", { x: 10, y: 38, "class": "step-desc" }, clip(st.description, 30)));
      g.appendChild(svg("text", { x: 10, y: 52, "class": "step-meta" }, st.status + (st.attempts > 1 ? " \u00b7 " + st.attempts + " attempts" : st.attempts === 1 ? " \u00b7 1 attempt" : "")));
      g.addEventListener("click", function () { filterStep(stepNodes[st.id].classList.contains("chosen") ? null : st.id); });
      g.addEventListener("keydown", function (e) { if (e.key === "Enter") filterStep(st.id); });
      stepNodes[st.id] = g;
      root.appendChild(g);
    });
  }
  function linkOutcome() {
    var box = $("outcome-text"), text = box.textContent;
    clear(box);
    box.appendChild(linked("span", null, text));
  }
  $("clear-filter").addEventListener("click", function () { filterStep(null); });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target && e.target.tagName === "INPUT" && e.target.type === "search") {
      if (e.key === "Escape") { $("filter").value = ""; filterText(""); $("filter").blur(); }
      return;
    }
    var k = e.key;
    if (k === "ArrowLeft" || k === "k") select(selected - 1);
    else if (k === "ArrowRight" || k === "j") select(selected + 1);
    else if (k === "Home" || k === "g") select(0);
    else if (k === "End" || k === "G") select(last);
    else if (k === "/") { e.preventDefault(); $("filter").focus(); }
    else if (k === "Escape") { filterStep(null); }
    else if (k === "s") { $("state-box").open = !$("state-box").open; }
    else if (k === "c") { var ev = events[selected - 1]; if (ev && ev.caused_by !== null && ev.caused_by !== undefined) select(ev.caused_by); }
    else return;
    document.body.dataset.key = k;
  });
  // the fragment picks what to show: #seq=7, #step=deploy (as a click on the step), #keys=jjk (as key presses)
  var hash = location.hash, m = /seq=(\d+)/.exec(hash);
  var ms = /step=([^&]+)/.exec(hash), mk = /keys=([^&]+)/.exec(hash);
  select(m ? Number(m[1]) : last);
  if (ms) {
    var want = decodeURIComponent(ms[1]);
    if (has(stepNodes, want)) stepNodes[want].dispatchEvent(new MouseEvent("click", { bubbles: true }));
  }
  if (mk) decodeURIComponent(mk[1]).split("").forEach(function (key) {
    document.dispatchEvent(new KeyboardEvent("keydown", { key: key, bubbles: true }));
  });
  document.body.dataset.ready = "1";
})();
