// agentcore run view: folds the embedded per-seq RFC 6902 diffs to show the state at any seq.
// Run data is only ever inserted with textContent (never innerHTML) and object keys are set as
// own properties, so no string from the run can become markup, script or a prototype change.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  var events = data.events, diffs = data.diffs, last = events.length, CHECKPOINT = 100;
  var has = function (o, k) { return Object.prototype.hasOwnProperty.call(o, k); };
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function clone(v) { return v === undefined ? v : JSON.parse(JSON.stringify(v)); }
  function clip(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "\u2026" : s; }

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
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "" : String(c);
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
      var s = el("span", "summary", ev.summary); s.title = ev.summary;
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
    if (k === 0) { meta.appendChild(el("span", null, "seq 0: the empty state before the first event")); pre.textContent = ""; return; }
    var ev = events[k - 1];
    meta.appendChild(el("strong", null, "seq " + ev.seq + " \u00b7 " + ev.type));
    meta.appendChild(el("span", null, ev.event.at));
    if (ev.caused_by !== null && ev.caused_by !== undefined) {
      var c = el("span", null, "caused by "); c.appendChild(seqButton(ev.caused_by, "seq " + ev.caused_by)); meta.appendChild(c);
    }
    pre.textContent = JSON.stringify(ev.event, null, 2);
  }

  function showDiff(k) {
    var table = $("diff"); clear(table);
    var ops = k === 0 ? [] : diffs[k - 1];
    if (!ops.length) { row(table, ["no change"]); return; }
    row(table, ["op", "path", "value"], true);
    ops.forEach(function (op) {
      var opCell = el("span", "op-" + String(op.op).replace(/[^a-z]/g, ""), op.op);
      var value = has(op, "value") ? clip(JSON.stringify(op.value), 400) : (op.from ? "from " + op.from : "");
      row(table, [opCell, el("code", null, op.path), el("code", null, value)]);
    });
  }

  var artifactIndex = {};
  function showFacts(state) {
    var table = $("facts"); clear(table);
    var facts = state.known_facts || {};
    var keys = Object.keys(facts).sort(function (a, b) { return facts[a].seq - facts[b].seq || (a < b ? -1 : 1); });
    if (!keys.length) { row(table, ["no facts yet"]); return; }
    row(table, ["key", "value", "source", "provenance"], true);
    keys.forEach(function (key) {
      var f = facts[key], chain = el("div");
      (data.provenance[String(f.seq)] || [{ seq: f.seq, type: "state_patched" }]).forEach(function (link) {
        var b = seqButton(link.seq, link.seq + " " + link.type); b.title = link.why || ""; chain.appendChild(b);
      });
      var art = f.artifact_id;
      if (art && has(artifactIndex, art)) {
        var a = el("button", "chip", "artifact " + art.slice(7, 19));
        a.type = "button";
        a.addEventListener("click", function () { var d = artifactIndex[art]; d.open = true; d.scrollIntoView(); });
        chain.appendChild(a);
      }
      row(table, [el("code", null, key), f.value, f.source + (f.confidence < 1 ? " (" + f.confidence + ")" : ""), chain]);
    });
  }

  function showState(state) {
    var box = $("state-box");
    $("state").textContent = box.open ? JSON.stringify(state, null, 2) : "";
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
      d.appendChild(el("pre", null, a.preview));
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
  }

  buildTimeline();
  buildArtifacts();
  $("seq").max = String(last);
  $("seq").addEventListener("input", function () { select(Number($("seq").value)); });
  $("prev").addEventListener("click", function () { select(selected - 1); });
  $("next").addEventListener("click", function () { select(selected + 1); });
  $("state-box").addEventListener("toggle", function () { showState(stateAt(selected)); });
  $("filter").addEventListener("input", function () {
    var q = $("filter").value.toLowerCase();
    items.forEach(function (li) { li.classList.toggle("hidden", q !== "" && li.textContent.toLowerCase().indexOf(q) < 0); });
  });
  document.addEventListener("keydown", function (e) {
    if (e.target && e.target.tagName === "INPUT" && e.target.type === "search") return;
    if (e.key === "ArrowLeft" || e.key === "k") select(selected - 1);
    if (e.key === "ArrowRight" || e.key === "j") select(selected + 1);
  });
  var m = /seq=(\d+)/.exec(location.hash);
  select(m ? Number(m[1]) : last);
  document.body.dataset.ready = "1";
})();
