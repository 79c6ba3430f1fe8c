/* datacarto review page: class proposals, new classes, merges, bulk actions, lasso, undo.
 *
 * Built on app.js (window.DC). Every change goes through the page's ordered job queue, and
 * every bulk change is previewed first: the server counts the rows it would change, the page
 * asks for confirmation, and the confirmed count is sent back so nothing else is changed if
 * the selection moved meanwhile. Dataset text is placed with textContent only.
 */
(function () {
  "use strict";
  var DC = window.DC;
  var $ = function (id) { return document.getElementById(id); };
  var el = DC.el;
  var T = { proposal: null, members: [], mpos: 0, newName: null, lasso: null, drawing: null, pending: null };

  function fail(prefix) { return function (err) { throw new Error(prefix + ": " + err.message); }; }
  function op(run) { DC.enqueue({ kind: "op", run: run }); }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function quote(name) { return "\u2018" + name + "\u2019"; }

  // ------------------------------------------------------------------ confirmation
  function ask(text, run) {
    T.pending = run;
    $("confirm-text").textContent = text;
    $("confirm").hidden = false;
    document.body.setAttribute("data-confirm", "1");
    $("confirm-yes").focus();
  }
  function closeAsk() {
    T.pending = null;
    $("confirm").hidden = true;
    document.body.setAttribute("data-confirm", "0");
  }
  $("confirm-yes").addEventListener("click", function () {
    var run = T.pending;
    closeAsk();
    if (run) op(run);
  });
  $("confirm-no").addEventListener("click", function () {
    closeAsk();
    DC.message("Cancelled; nothing changed.");
  });

  function done(res) {
    return DC.refresh().then(function () {
      DC.message("Done: " + res.action.source + " (" + plural(res.action.rows, "example") +
                 "). Undo it under \u201cBulk actions done\u201d.");
    });
  }

  function verb(action, label) {
    return { accept: "Accept the suggested label", keep: "Keep the given label", drop: "Drop",
             relabel: "Relabel as " + quote(label) }[action];
  }

  // preview on the server, then confirm, then apply exactly the confirmed count
  function askBulk(selection, action, label) {
    op(function () {
      var body = { selection: selection, action: action, label: label === undefined ? null : label };
      return DC.post("/api/preview", body).then(function (res) {
        if (!res.count) {
          DC.message(res.source + ": " + plural(res.selected, "example") + " selected, none would change; " +
                     "nothing to do.", true);
          return;
        }
        var already = res.selected - res.count;
        ask(verb(action, label) + " for " + plural(res.count, "example") + " (" + res.source +
            (already ? "; " + already + " already so" : "") + ")?", function () {
          body.expect = res.count;
          return DC.post("/api/bulk", body).then(done, fail("not applied"));
        });
      }, fail("could not select"));
    });
  }

  // ------------------------------------------------------------------ bulk form
  function selection() {
    if ($("sel-lasso").checked) return T.lasso ? { lasso: T.lasso } : null;
    var f = {};
    [["class", "f-class"], ["region", "f-region"], ["assessment", "f-assessment"]].forEach(function (kv) {
      if ($(kv[1]).value) f[kv[0]] = $(kv[1]).value;
    });
    if ($("f-min").value !== "") f.score_min = parseFloat($("f-min").value);
    if ($("f-max").value !== "") f.score_max = parseFloat($("f-max").value);
    return { filter: f };
  }
  $("bulk-preview").addEventListener("click", function () {
    var sel = selection();
    if (!sel) { DC.message("Draw a lasso on the map first (drag on it).", true); return; }
    var v = $("bulk-action").value, cut = v.indexOf(":");
    if (cut < 0) askBulk(sel, v);
    else askBulk(sel, v.slice(0, cut), v.slice(cut + 1));
  });
  $("accept-above").addEventListener("click", function () {
    var s = parseFloat($("accept-score").value);
    if (isNaN(s)) { DC.message("Give the lowest score as a number.", true); return; }
    askBulk({ filter: { score_min: s } }, "accept");
  });

  function fillSelect(sel, values, keep) {
    var was = sel.value;
    sel.textContent = "";
    (keep || []).forEach(function (kv) { var o = el("option", kv[1]); o.value = kv[0]; sel.appendChild(o); });
    values.forEach(function (v) { var o = el("option", v); o.value = v; sel.appendChild(o); });
    if (Array.prototype.some.call(sel.options, function (o) { return o.value === was; })) sel.value = was;
  }

  // ------------------------------------------------------------------ lasso on the map
  var map = $("minimap");
  function at(ev) { return DC.toData ? DC.toData(ev.offsetX, ev.offsetY) : null; }
  map.addEventListener("mousedown", function (ev) {
    var p = at(ev);
    if (!p) return;
    T.drawing = [p];
    ev.preventDefault();
  });
  map.addEventListener("mousemove", function (ev) {
    if (!T.drawing) return;
    T.drawing.push(at(ev));
    T.lasso = T.drawing;
    DC.redraw();
  });
  window.addEventListener("mouseup", function () {
    if (!T.drawing) return;
    var pts = T.drawing;
    T.drawing = null;
    if (pts.length < 3) { T.lasso = null; DC.redraw(); return; }
    T.lasso = pts;
    $("sel-lasso").checked = true;
    $("lasso-info").textContent = "a lasso of " + pts.length + " points; choose the action and apply";
    document.body.setAttribute("data-lasso", String(pts.length));
    DC.redraw();
  });
  $("lasso-clear").addEventListener("click", function () {
    T.lasso = null;
    $("sel-filter").checked = true;
    $("lasso-info").textContent = "(drag on the map to draw one)";
    document.body.removeAttribute("data-lasso");
    DC.redraw();
  });
  DC.afterDraw.push(function (ctx) {
    if (!T.lasso || !DC.toPixel) return;
    ctx.strokeStyle = "#8a5a00"; ctx.lineWidth = 1.5; ctx.fillStyle = "rgba(230,194,41,0.15)";
    ctx.beginPath();
    T.lasso.forEach(function (p, i) {
      var q = DC.toPixel(p[0], p[1]);
      if (i) ctx.lineTo(q[0], q[1]); else ctx.moveTo(q[0], q[1]);
    });
    ctx.closePath(); ctx.fill(); ctx.stroke();
  });

  // ------------------------------------------------------------------ proposals
  function renderProposals(st) {
    var ol = $("proposals");
    ol.textContent = "";
    $("proposals-empty").hidden = st.proposals.length > 0;
    st.proposals.forEach(function (p) {
      var li = el("li");
      li.setAttribute("data-pid", p.pid);
      var what = p.kind === "add" ? "new class " + (p.where === "apart" ? "apart from " : p.where ? "between " : "near ") +
        p.classes.join(" / ") +
        " (" + plural(p.size, "example") + ")" : "merge " + p.classes.join(" and ");
      li.appendChild(el("span", what + (p.terms.length ? " \u2014 " + p.terms.slice(0, 8).join(", ") : "") + " "));
      var b = el("button", "Review");
      b.type = "button";
      b.addEventListener("click", function () { openProposal(p); });
      li.appendChild(b);
      ol.appendChild(li);
    });
  }

  function openProposal(p) {
    op(function () {
      return DC.api("/api/proposal?pid=" + encodeURIComponent(p.pid)).then(function (res) {
        T.proposal = res; T.members = res.members; T.mpos = 0; T.newName = null;
        document.body.setAttribute("data-proposal", res.pid);
        $("proposal-panel").hidden = false;
        $("proposal-title").textContent = "Proposal " + res.number + ": " + res.kind + " (" +
          res.classes.join(" / ") + ")";
        var ev = Object.keys(res.evidence || {}).map(function (k) { return k + " " + JSON.stringify(res.evidence[k]); });
        $("proposal-info").textContent = (res.kind === "add" ? plural(res.members.length, "member") + ". " : "") +
          (res.terms.length ? "Terms: " + res.terms.join(", ") + ". " : "") + ev.join("; ");
        $("newclass-form").hidden = res.kind !== "add";
        $("member-card").hidden = res.kind !== "add";
        $("merge-proposal").hidden = res.kind !== "merge";
        fillSelect($("merge-proposal-into"), res.classes);
        setNewClass(null);
        return res.kind === "add" ? showMember() : null;
      }, fail("could not open the proposal"));
    });
  }

  function setNewClass(name) {
    T.newName = name;
    $("member-class").textContent = name || "the new class (create it first)";
    $("member-add").disabled = $("member-all").disabled = !name;
    $("newclass-create").disabled = !!name;
    if (name) document.body.setAttribute("data-newclass", name);
    else document.body.removeAttribute("data-newclass");
  }

  function showMember() {
    if (!T.members.length) return Promise.resolve();
    T.mpos = (T.mpos + T.members.length) % T.members.length;
    var m = T.members[T.mpos];
    return DC.api("/api/example?id=" + encodeURIComponent(m.id)).then(function (ex) {
      m.current = ex.current;
      document.body.setAttribute("data-member-id", ex.id);
      $("member-position").textContent = "Member " + (T.mpos + 1) + " of " + T.members.length + " (id " + ex.id + ")";
      $("member-text").textContent = ex.text === null ? "" : ex.text;
      $("member-text").hidden = ex.text === null;
      var pic = $("member-picture");
      pic.textContent = "";
      if (ex.image) { var img = el("img"); img.src = ex.image; img.alt = "example " + ex.id; pic.appendChild(img); }
      $("member-status").textContent = "Label now: " + (ex.current === null ? "dropped" : ex.current) +
        (ex.current !== ex.given ? " (given " + ex.given + ")" : "");
    }, fail("could not load member"));
  }
  $("member-prev").addEventListener("click", function () { op(function () { T.mpos -= 1; return showMember(); }); });
  $("member-next").addEventListener("click", function () { op(function () { T.mpos += 1; return showMember(); }); });

  $("newclass-create").addEventListener("click", function () {
    var name = $("newclass-name").value, p = T.proposal;
    if (!p) return;
    op(function () {
      return DC.post("/api/class", { name: name, proposal: p.pid }).then(function (res) {
        setNewClass(res.name);
        return DC.refresh().then(function () {
          DC.message("Created " + res.source + ": add its members one by one or all at once.");
        });
      }, fail("class not created"));
    });
  });
  $("member-add").addEventListener("click", function () {
    var p = T.proposal, m = T.members[T.mpos], name = T.newName;
    if (!p || !m || !name) return;
    op(function () {
      return DC.post("/api/decide", { id: m.id, action: "relabel", label: name, proposal: p.pid }).then(function () {
        DC.message("Added " + m.id + " to " + quote(name) + ".");
        T.mpos += 1;
        return DC.refresh().then(showMember);
      }, fail("not saved"));
    });
  });
  $("member-all").addEventListener("click", function () {
    if (T.proposal && T.newName) askBulk({ proposal: T.proposal.pid }, "relabel", T.newName);
  });

  // ------------------------------------------------------------------ merges
  function askMerge(a, b, into, pid) {
    if (!a || !b || a === b) { DC.message("Choose two different classes to merge.", true); return; }
    var other = into === a ? b : a;
    op(function () {
      return DC.post("/api/preview", { selection: { filter: { "class": other } }, action: "relabel", label: into })
        .then(function (res) {
          ask("Merge " + quote(other) + " into " + quote(into) + ": relabel " + plural(res.count, "example") +
              " and retire " + quote(other) + "?", function () {
            return DC.post("/api/merge", { a: a, b: b, into: into, proposal: pid || null }).then(done, fail("not merged"));
          });
        }, fail("could not merge"));
    });
  }
  $("merge-go").addEventListener("click", function () {
    var a = $("merge-a").value, b = $("merge-b").value;
    askMerge(a, b, $("merge-into").value === "a" ? a : b, null);
  });
  $("merge-proposal-go").addEventListener("click", function () {
    var p = T.proposal;
    if (p) askMerge(p.classes[0], p.classes[1], $("merge-proposal-into").value, p.pid);
  });

  // ------------------------------------------------------------------ undo
  function renderActions(st) {
    var ol = $("bulk-done");
    ol.textContent = "";
    $("actions-empty").hidden = st.actions.length > 0;
    st.actions.forEach(function (a) {
      var li = el("li", null, a.undone ? "undone" : "");
      li.setAttribute("data-action", a.group);
      var what = a.rows || !a.created.length ? plural(a.rows, "example") : "class created";
      li.appendChild(el("span", a.source + " \u2014 " + what + (a.undone ? " (undone)" : "") + " "));
      var b = el("button", "Undo");
      b.type = "button";
      b.disabled = !!a.undone;
      b.addEventListener("click", function () {
        op(function () {
          return DC.post("/api/undo", { action: a.group }).then(function (res) {
            return DC.refresh().then(function () { DC.message("Undone: " + res.action.source + "."); });
          }, fail("not undone"));
        });
      });
      li.appendChild(b);
      ol.appendChild(li);
    });
    document.body.setAttribute("data-actions", String(st.actions.filter(function (a) { return !a.undone; }).length));
  }

  // ------------------------------------------------------------------ on every state
  DC.onState.push(function (st) {
    var labels = st.all_classes;
    fillSelect($("f-class"), labels, [["", "any"]]);
    fillSelect($("f-region"), st.regions, [["", "any"]]);
    fillSelect($("f-assessment"), st.assessments, [["", "any"]]);
    fillSelect($("merge-a"), st.classes);
    fillSelect($("merge-b"), st.classes);
    if ($("merge-b").selectedIndex === 0 && st.classes.length > 1 && $("merge-a").value === $("merge-b").value) {
      $("merge-b").selectedIndex = 1;
    }
    fillSelect($("bulk-action"), [], [["accept", "accept the suggested label"], ["keep", "keep the given label"],
      ["drop", "drop"]].concat(st.classes.map(function (c) { return ["relabel:" + c, "relabel as " + c]; })));
    $("neighbour-space").textContent = "Nearest in " + st.neighbour_space + ", with their labels now.";
    document.body.setAttribute("data-classes", st.classes.join("|"));
    renderProposals(st);
    renderActions(st);
  });
  document.body.setAttribute("data-confirm", "0");
})();
