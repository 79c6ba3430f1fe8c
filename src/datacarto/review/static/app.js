/* datacarto review page.
 *
 * Talks to the local review server (JSON API, see datacarto/review/server.py). Dataset text is
 * untrusted: it is only ever placed in the page with textContent, never as HTML. State-changing
 * requests carry the per-session token from <meta name="dc-token">.
 *
 * Keys and clicks are jobs in one queue, run strictly in order: a decision is posted only after
 * the previous one was saved and the next example shown, so fast typing loses nothing. The
 * header shows how many decisions are still saving; a failed save stops the queue and says how
 * many later keys it did not apply. Bulk actions (tools.js) are jobs in the same queue.
 */
(function () {
  "use strict";
  var token = document.querySelector('meta[name="dc-token"]').getAttribute("content");
  var S = { state: null, queue: [], map: null, pos: 0, current: null, ready: false };
  var Q = { jobs: [], running: false };  // keys and clicks waiting, in order; jobs[0] runs
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fmt(v) { return typeof v === "number" ? v.toFixed(3) : String(v); }
  function message(text, isError) {
    var m = $("message");
    m.textContent = text || "";
    m.className = isError ? "error" : "";
  }

  function api(path, options) {
    return fetch(path, options).then(function (r) {
      return r.json().catch(function () { return { error: r.status + " " + r.statusText }; })
        .then(function (body) {
          if (!r.ok) throw new Error(body.error || (r.status + " " + r.statusText));
          return body;
        });
    });
  }
  function post(path, obj) {
    return api(path, { method: "POST", body: JSON.stringify(obj || {}),
                       headers: { "Content-Type": "application/json", "X-Datacarto-Token": token } });
  }

  // ------------------------------------------------------------------ rendering
  function describe(decision) {
    if (!decision) return "";
    if (decision.action === "drop") return "dropped";
    if (decision.action === "keep") return "kept as " + decision.new_label;
    return (decision.action === "accept" ? "accepted: " : "relabelled: ") + decision.new_label;
  }

  function renderProgress() {
    var st = S.state;
    $("progress").textContent = st.decided + " of " + st.total + " suspects decided";
    document.body.setAttribute("data-decided", String(st.decided));
  }

  function renderQueue() {
    var ol = $("queue");
    ol.textContent = "";
    S.queue.forEach(function (item, p) {
      var li = el("li", item.id + " \u00b7 " + item.given + " \u2192 " + item.suggested +
                  (item.decision ? " \u00b7 " + describe(item.decision) : ""));
      if (p === S.pos) li.classList.add("here");
      if (item.decision) li.classList.add("done");
      li.addEventListener("click", function () { show(p); });
      ol.appendChild(li);
    });
    // scroll the list only (scrollIntoView would scroll the whole page as well)
    var here = ol.querySelector("li.here");
    if (here) {
      var top = here.offsetTop;
      if (top < ol.scrollTop || top + here.offsetHeight > ol.scrollTop + ol.clientHeight) {
        ol.scrollTop = Math.max(0, top - ol.clientHeight / 3);
      }
    }
  }

  function renderExample(ex) {
    S.current = ex;
    document.body.setAttribute("data-current-id", ex.id);
    $("position").textContent = "Suspect " + (S.pos + 1) + " of " + S.queue.length;
    var text = $("text");
    text.textContent = ex.text === null ? (ex.image ? "" : "(no text: start the review with --data and --text-column)")
      : ex.text;
    text.hidden = ex.text === null && !!ex.image;
    var pic = $("picture");
    pic.textContent = "";  // an <img> only for examples that have a picture
    pic.hidden = !ex.image;
    if (ex.image) {
      var img = el("img");
      img.src = ex.image;
      img.alt = "the picture of example " + ex.id;
      pic.appendChild(img);
    }
    var dl = $("fields");
    dl.textContent = "";
    [["id", ex.id], ["given label", ex.given]].concat(
      ex.current !== ex.given ? [["label now", ex.current === null ? "dropped" : ex.current]] : [],
      [["suggested label", ex.suggested]],
     [
     ["error score", fmt(ex.score)], ["confidence", fmt(ex.y)], ["variability", fmt(ex.x)],
     ["correctness", fmt(ex.correctness)], ["region", ex.region]]).concat(
      // why it is a suspect: the evidence `datacarto run` recorded (absent otherwise)
      ex.reason ? [["why", ex.reason]] : [], ex.evidence ? [["evidence", ex.evidence]] : []
    ).forEach(function (kv) {
      dl.appendChild(el("dt", kv[0]));
      dl.appendChild(el("dd", kv[1]));
    });
    var status = $("status");
    status.textContent = ex.decision ? "Decided: " + describe(ex.decision) : "Not decided yet";
    status.className = "status" + (ex.decision ? " decided" : "");
    $("accept-label").textContent = ex.suggested;
    document.querySelectorAll("#label-buttons button").forEach(function (b) {
      b.classList.toggle("current", b.getAttribute("data-label") === ex.given);
    });
    var nb = $("neighbours");
    nb.textContent = "";
    ex.neighbours.forEach(function (n) {
      var li = el("li");
      if (n.image) {
        var img = el("img", null, "thumb");
        img.src = n.image;
        img.alt = "example " + n.id;
        li.appendChild(img);
      }
      // the neighbour's label now, after every decision so far
      li.appendChild(el("b", n.current === null ? "dropped" : n.current, "current-label"));
      li.appendChild(document.createTextNode(
        " (id " + n.id + (n.current !== n.given ? ", given " + n.given : "") +
        (n.flagged ? ", suspect" : "") + "): " + (n.text === null ? "" : n.text)));
      nb.appendChild(li);
    });
    drawMap(ex);
    renderQueue();
  }

  function drawMap(ex) {
    var c = $("minimap"), ctx = c.getContext("2d"), ratio = window.devicePixelRatio || 1;
    var w = 360, h = 300, pad = 28;
    c.width = w * ratio; c.height = h * ratio;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    // axes that fit the data (the server's limits), so a cloud in a corner fills the map
    var lim = S.map && S.map.limits ? S.map.limits : [[0, 0.5], [0, 1]];
    function X(v) { return pad + (v - lim[0][0]) / (lim[0][1] - lim[0][0]) * (w - pad - 8); }
    function Y(v) { return h - pad - (v - lim[1][0]) / (lim[1][1] - lim[1][0]) * (h - pad - 8); }
    ctx.strokeStyle = "#ccc"; ctx.strokeRect(pad, 8, w - pad - 8, h - pad - 8);
    ctx.fillStyle = "#666"; ctx.font = "11px sans-serif";
    ctx.fillText("variability", w / 2 - 25, h - 8);
    ctx.save(); ctx.translate(11, h / 2 + 25); ctx.rotate(-Math.PI / 2); ctx.fillText("confidence", 0, 0); ctx.restore();
    var m = S.map;
    if (m) {
      for (var i = 0; i < m.x.length; i++) {
        ctx.fillStyle = m.flag[i] ? "rgba(178,24,43,0.45)" : "rgba(120,120,120,0.25)";
        ctx.fillRect(X(m.x[i]) - 1, Y(m.y[i]) - 1, 2, 2);
      }
    }
    ctx.strokeStyle = "#2166ac"; ctx.lineWidth = 1.5;
    ex.neighbours.forEach(function (n) {
      ctx.beginPath(); ctx.arc(X(n.x), Y(n.y), 5, 0, 2 * Math.PI); ctx.stroke();
    });
    ctx.fillStyle = "#000";
    ctx.beginPath(); ctx.arc(X(ex.x), Y(ex.y), 5, 0, 2 * Math.PI); ctx.fill();
    DC.toPixel = function (x, y) { return [X(x), Y(y)]; };
    DC.toData = function (px, py) {
      return [lim[0][0] + (px - pad) / (w - pad - 8) * (lim[0][1] - lim[0][0]),
              lim[1][0] + (h - pad - py) / (h - pad - 8) * (lim[1][1] - lim[1][0])];
    };
    DC.afterDraw.forEach(function (f) { f(ctx); });
  }

  // ------------------------------------------------------------------ actions
  function load(pos) {
    if (!S.queue.length) return Promise.resolve();
    S.pos = (pos + S.queue.length) % S.queue.length;
    var id = S.queue[S.pos].id;
    return api("/api/example?id=" + encodeURIComponent(id)).then(renderExample, function (err) {
      throw new Error("could not load example " + id + ": " + err.message);
    });
  }

  function saveDecision(job) {
    if (!S.current) return Promise.resolve();
    var body = { id: S.current.id, action: job.action };
    if (job.label !== undefined) body.label = job.label;
    return post("/api/decide", body).then(function (res) {
      var item = S.queue[S.pos];
      if (item && item.id === res.id) item.decision = res.decision;
      S.state.decided = res.decided;
      renderProgress();
      message("Saved: " + res.id + " " + describe(res.decision) + ".");
      if (res.next === null) {
        message("Saved. All " + S.queue.length + " suspects are decided: export the corrected dataset when ready.");
        return load(S.pos);
      }
      return load(res.next);
    }, function (err) { throw new Error("not saved: " + err.message); });
  }

  function exportData() {
    message("Exporting\u2026");
    return post("/api/export", {}).then(function (res) {
      message("Export done: " + res.summary + ".");
      document.body.setAttribute("data-exported", res.path);
    }, function (err) { throw new Error("export failed: " + err.message); });
  }

  // after a bulk action, an undo or a new class: every view is read again from the server
  function refresh() {
    return Promise.all([api("/api/state"), api("/api/queue")]).then(function (r) {
      S.state = r[0]; S.queue = r[1];
      renderProgress();
      buildLabelControls(S.state.classes);
      DC.onState.forEach(function (f) { f(S.state); });
      return S.queue.length ? load(S.pos) : null;
    });
  }

  var RUN = {
    decide: saveDecision,
    op: function (job) { return job.run(); },
    move: function (job) { return load(S.pos + job.step); },
    go: function (job) { return load(job.pos); },
    export: exportData
  };

  function pendingDecisions() {
    return Q.jobs.filter(function (j) { return j.kind === "decide"; }).length;
  }
  function renderPending() {
    var n = pendingDecisions();
    $("pending").textContent = n ? n + (n === 1 ? " decision" : " decisions") + " saving\u2026" : "";
    document.body.setAttribute("data-pending", String(n));
    document.body.setAttribute("data-busy", Q.jobs.length ? "1" : "0");
  }
  function enqueue(job) {
    Q.jobs.push(job);
    renderPending();
    pump();
  }
  function pump() {
    if (Q.running || !Q.jobs.length || !S.ready) return;
    Q.running = true;
    RUN[Q.jobs[0].kind](Q.jobs[0]).then(function () {
      Q.jobs.shift();
      Q.running = false;
      renderPending();
      pump();
    }, function (err) {
      // stop: never apply later keys to an example the user did not see
      var left = Q.jobs.length - 1;
      Q.jobs = [];
      Q.running = false;
      renderPending();
      var text = err.message.charAt(0).toUpperCase() + err.message.slice(1).replace(/\.$/, "");
      message(text + (left ? "; stopped, " + left + (left === 1 ? " later key was" : " later keys were") +
                      " not applied" : "") + ".", true);
    });
  }
  function decide(action, label) { enqueue({ kind: "decide", action: action, label: label }); }
  function show(pos) { enqueue({ kind: "go", pos: pos }); }
  function move(step) { enqueue({ kind: "move", step: step }); }

  function buildLabelControls(classes) {
    var box = $("label-buttons"), sel0 = $("label-select");
    box.textContent = "";
    sel0.textContent = "";
    if (classes.length <= 20) {
      sel0.hidden = true;
      $("label-set").hidden = true;
      classes.forEach(function (name, k) {
        var b = el("button", null);
        b.type = "button";
        b.setAttribute("data-label", name);
        b.appendChild(document.createTextNode(name + " "));
        if (k < 9) b.appendChild(el("kbd", String(k + 1)));
        b.addEventListener("click", function () { decide("relabel", name); });
        box.appendChild(b);
      });
    } else {
      var sel = $("label-select");
      classes.forEach(function (name) { var o = el("option", name); o.value = name; sel.appendChild(o); });
      sel.hidden = false;
      $("label-set").hidden = false;
    }
  }

  document.addEventListener("keydown", function (ev) {
    var tag = (ev.target && ev.target.tagName) || "";
    if (ev.ctrlKey || ev.metaKey || ev.altKey || tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    var k = ev.key, classes = S.state ? S.state.classes : [];
    if (k === "a") decide("accept");
    else if (k === "k") decide("keep");
    else if (k === "x" || k === "d") decide("drop");
    else if (k === "n" || k === "ArrowRight") move(1);
    else if (k === "p" || k === "ArrowLeft") move(-1);
    else if (k === "e") enqueue({ kind: "export" });
    else if (k === "l" && !$("label-select").hidden) decide("relabel", $("label-select").value);
    else if (/^[1-9]$/.test(k) && parseInt(k, 10) <= Math.min(9, classes.length)) decide("relabel", classes[parseInt(k, 10) - 1]);
    else return;
    ev.preventDefault();
  });
  $("accept").addEventListener("click", function () { decide("accept"); });
  $("keep").addEventListener("click", function () { decide("keep"); });
  $("drop").addEventListener("click", function () { decide("drop"); });
  $("prev").addEventListener("click", function () { move(-1); });
  $("next").addEventListener("click", function () { move(1); });
  $("export").addEventListener("click", function () { enqueue({ kind: "export" }); });
  $("label-set").addEventListener("click", function () { decide("relabel", $("label-select").value); });
  renderPending();

  // what tools.js (proposals, merges, bulk actions, lasso) uses
  var DC = window.DC = { S: S, api: api, post: post, el: el, message: message, enqueue: enqueue,
                         refresh: refresh, describe: describe, onState: [], afterDraw: [],
                         redraw: function () { if (S.current) drawMap(S.current); },
                         toPixel: null, toData: null };

  // ------------------------------------------------------------------ start
  Promise.all([api("/api/state"), api("/api/queue"), api("/api/map")]).then(function (r) {
    S.state = r[0]; S.queue = r[1]; S.map = r[2];
    renderProgress();
    buildLabelControls(S.state.classes);
    DC.onState.forEach(function (f) { f(S.state); });
    if (S.state.problems.length) {
      var n = $("notice");
      n.hidden = false;
      n.textContent = "Problems in the decision log (skipped; every other decision was kept):\n" +
        S.state.problems.join("\n");
    }
    if (!S.state.can_export) {
      $("export").disabled = true;
      $("export").title = "start the review with --data (and --label-column) to export";
    }
    if (!S.queue.length) {
      $("empty").hidden = false;
      return null;
    }
    $("example").hidden = false;
    // resume where the user left off: the first suspect without a decision
    return load(S.state.next === null ? 0 : S.state.next).then(function () {
      if (S.state.next === null) message("All suspects are decided; you can revise any of them or export.");
    });
  }).then(function () {
    S.ready = true;
    document.body.setAttribute("data-ready", "1");
    pump();  // keys pressed while the page was loading
  }).catch(function (err) { message("Could not start: " + err.message, true); });
})();
