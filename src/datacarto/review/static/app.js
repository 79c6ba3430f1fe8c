/* datacarto review page.
 *
 * Talks to the local review server (JSON API, see datacarto/review/server.py). Dataset text is
 * untrusted: it is only ever placed in the page with textContent, never as HTML. State-changing
 * requests carry the per-session token from <meta name="dc-token">.
 */
(function () {
  "use strict";
  var token = document.querySelector('meta[name="dc-token"]').getAttribute("content");
  var S = { state: null, queue: [], map: null, pos: 0, current: null, busy: false };
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
    text.textContent = ex.text === null ? "(no text: start the review with --data and --text-column)" : ex.text;
    var dl = $("fields");
    dl.textContent = "";
    [["id", ex.id], ["given label", ex.given], ["suggested label", ex.suggested],
     ["error score", fmt(ex.score)], ["confidence", fmt(ex.y)], ["variability", fmt(ex.x)],
     ["correctness", fmt(ex.correctness)], ["region", ex.region]].concat(
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
      li.appendChild(el("b", n.given));
      li.appendChild(document.createTextNode(
        " (id " + n.id + (n.flagged ? ", suspect" : "") + "): " + (n.text === null ? "" : n.text)));
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
    function X(v) { return pad + v / 0.5 * (w - pad - 8); }
    function Y(v) { return h - pad - v * (h - pad - 8); }
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
  }

  // ------------------------------------------------------------------ actions
  function show(pos) {
    if (!S.queue.length) return Promise.resolve();
    S.pos = (pos + S.queue.length) % S.queue.length;
    var id = S.queue[S.pos].id;
    return api("/api/example?id=" + encodeURIComponent(id)).then(renderExample)
      .catch(function (err) { message("Could not load example " + id + ": " + err.message, true); });
  }

  function decide(action, label) {
    if (S.busy || !S.current) return;
    S.busy = true;
    document.body.setAttribute("data-busy", "1");
    var body = { id: S.current.id, action: action };
    if (label !== undefined) body.label = label;
    post("/api/decide", body).then(function (res) {
      var item = S.queue[S.pos];
      if (item && item.id === res.id) item.decision = res.decision;
      S.state.decided = res.decided;
      renderProgress();
      message("Saved: " + res.id + " " + describe(res.decision) + ".");
      if (res.next === null) {
        message("Saved. All " + S.queue.length + " suspects are decided: export the corrected dataset when ready.");
        return show(S.pos);
      }
      return show(res.next);
    }).catch(function (err) {
      message("Not saved: " + err.message, true);
    }).then(function () {
      S.busy = false;
      document.body.setAttribute("data-busy", "0");
    });
  }

  function exportData() {
    if (S.busy) return;
    S.busy = true;
    message("Exporting\u2026");
    post("/api/export", {}).then(function (res) {
      message("Export done: " + res.summary + ".");
      document.body.setAttribute("data-exported", res.path);
    }).catch(function (err) {
      message("Export failed: " + err.message, true);
    }).then(function () { S.busy = false; });
  }

  function buildLabelControls(classes) {
    var box = $("label-buttons");
    if (classes.length <= 20) {
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
      $("label-set").addEventListener("click", function () { decide("relabel", sel.value); });
    }
  }

  document.addEventListener("keydown", function (ev) {
    var tag = (ev.target && ev.target.tagName) || "";
    if (ev.ctrlKey || ev.metaKey || ev.altKey || tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    var k = ev.key, classes = S.state ? S.state.classes : [];
    if (k === "a") decide("accept");
    else if (k === "k") decide("keep");
    else if (k === "x" || k === "d") decide("drop");
    else if (k === "n" || k === "ArrowRight") show(S.pos + 1);
    else if (k === "p" || k === "ArrowLeft") show(S.pos - 1);
    else if (k === "e") exportData();
    else if (k === "l" && !$("label-select").hidden) decide("relabel", $("label-select").value);
    else if (/^[1-9]$/.test(k) && parseInt(k, 10) <= Math.min(9, classes.length)) decide("relabel", classes[parseInt(k, 10) - 1]);
    else return;
    ev.preventDefault();
  });
  $("accept").addEventListener("click", function () { decide("accept"); });
  $("keep").addEventListener("click", function () { decide("keep"); });
  $("drop").addEventListener("click", function () { decide("drop"); });
  $("prev").addEventListener("click", function () { show(S.pos - 1); });
  $("next").addEventListener("click", function () { show(S.pos + 1); });
  $("export").addEventListener("click", exportData);

  // ------------------------------------------------------------------ start
  Promise.all([api("/api/state"), api("/api/queue"), api("/api/map")]).then(function (r) {
    S.state = r[0]; S.queue = r[1]; S.map = r[2];
    renderProgress();
    buildLabelControls(S.state.classes);
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
      document.body.setAttribute("data-ready", "1");
      return null;
    }
    $("example").hidden = false;
    // resume where the user left off: the first suspect without a decision
    return show(S.state.next === null ? 0 : S.state.next).then(function () {
      if (S.state.next === null) message("All suspects are decided; you can revise any of them or export.");
      document.body.setAttribute("data-ready", "1");
    });
  }).catch(function (err) { message("Could not start: " + err.message, true); });
})();
