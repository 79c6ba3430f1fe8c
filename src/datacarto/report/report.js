/* datacarto interactive report.
 *
 * Reads the JSON payload in #dc-data, draws the data map with plotly (WebGL scatter, marginal
 * histograms), a hover tooltip, filters, a per-class summary and a sortable, searchable table
 * of suspects. Dataset text is untrusted: it only ever reaches the page through textContent,
 * and plotly is given no dataset text at all (the points have hoverinfo "none"; the tooltip
 * is our own element). Class names do reach plotly (legend entries), so they are escaped.
 * Pictures of image examples are data: URIs made by datacarto, set as an <img> src only.
 */
(function () {
  "use strict";
  var t0 = performance.now();
  var D = JSON.parse(document.getElementById("dc-data").textContent);
  var P = D.points;
  var nPts = P.id.length;
  var gd = document.getElementById("dc-map");
  var HIST_BINS = 50;
  var DENSITY_BINS = [100, 200];
  var MAX_GROUPS = 24;
  var REGION_COLORS = ["#1b9e77", "#7570b3", "#d95f02"];
  var CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
    "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#9ecae1", "#fdae6b", "#a1d99b", "#bbbbbb"];
  var state = { colour: "correctness", cls: -1, region: -1, flaggedOnly: false, selected: -1 };
  var traceIndex = [];   // per plotly trace: point indices (into P) it shows, or null
  // histogram bins span the first view (clipped to the possible values), so a cloud that fills
  // a corner still gets HIST_BINS bins across it
  var HX = [Math.max(0, D.axes.limits[0][0]), Math.min(0.5, D.axes.limits[0][1])];
  var HY = [Math.max(0, D.axes.limits[1][0]), Math.min(1, D.axes.limits[1][1])];

  // ------------------------------------------------------------------ helpers
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  // Plotly renders a pseudo-HTML subset in legend names and titles: escape anything we pass.
  // Quotes as numeric references: plotly decodes &#34; but shows &quot; literally.
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&#34;").replace(/'/g, "&#39;");
  }
  function fmt(v, d) { return v === null || v === undefined ? "" : Number(v).toFixed(d === undefined ? 3 : d); }
  function decode(b64, Type) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  function corrBin(c) {
    var e = D.correctness_edges;
    for (var b = 1; b < e.length - 1; b++) if (c < e[b]) return b - 1;
    return e.length - 2;
  }
  function className(k) { return k >= 0 && k < D.classes.length ? D.classes[k] : String(k); }

  // -------------------------------------------------------- all examples (A)
  // A holds every example (density mode: quantized, from base64 arrays); P the hover layer.
  var A;
  if (D.full) {
    var qx = decode(D.full.x, Uint16Array), qy = decode(D.full.y, Uint16Array);
    var ax = new Float32Array(qx.length), ay = new Float32Array(qy.length);
    for (var q = 0; q < qx.length; q++) { ax[q] = qx[q] / 65535 * 0.5; ay[q] = qy[q] / 65535; }
    A = { n: qx.length, x: ax, y: ay, label: decode(D.full.label, Uint16Array),
          region: decode(D.full.region, Uint8Array), cbin: decode(D.full.cbin, Uint8Array),
          flag: decode(D.full.flag, Uint8Array),
          mbin: D.full.mbin ? decode(D.full.mbin, Uint8Array) : null };
  } else {
    var cb = new Uint8Array(nPts);
    for (var j = 0; j < nPts; j++) cb[j] = corrBin(P.corr[j]);
    A = { n: nPts, x: P.x, y: P.y, label: P.label, region: P.region, cbin: cb, flag: P.flag,
          mbin: P.mbin };
  }
  P.cbin = D.full ? (function () {
    var c = new Uint8Array(nPts);
    for (var i = 0; i < nPts; i++) c[i] = corrBin(P.corr[i]);
    return c;
  })() : A.cbin;

  // ------------------------------------------------------------- grouping
  function groups() {
    if (state.colour === "region") {
      return { of: function (arr, i) { return arr.region[i]; },
               names: D.region_titles, colors: REGION_COLORS };
    }
    if (state.colour === "missing" && D.missing) {
      var mn = [];
      for (var m = 0; m < D.missing.colors.length; m++) {
        mn.push("missing-class score " + D.missing.edges[m].toFixed(2) + "–" + D.missing.edges[m + 1].toFixed(2));
      }
      return { of: function (arr, i) { return arr.mbin[i]; }, names: mn, colors: D.missing.colors };
    }
    if (state.colour === "class") {
      var k = D.classes.length, names = [], colors = [];
      var shown = k > MAX_GROUPS ? MAX_GROUPS - 1 : k;
      for (var c = 0; c < shown; c++) { names.push(D.classes[c]); colors.push(CLASS_COLORS[c]); }
      if (k > shown) { names.push("other classes"); colors.push(CLASS_COLORS[MAX_GROUPS - 1]); }
      return { of: function (arr, i) { return Math.min(arr.label[i], shown); }, names: names, colors: colors };
    }
    var bn = [];
    for (var b = 0; b < D.correctness_colors.length; b++) {
      var lo = D.correctness_edges[b], hi = D.correctness_edges[b + 1];
      bn.push("correctness " + lo.toFixed(1) + "–" + hi.toFixed(1));
    }
    return { of: function (arr, i) { return arr.cbin[i]; }, names: bn, colors: D.correctness_colors };
  }
  function keep(arr, i) {
    return (state.cls < 0 || arr.label[i] === state.cls) &&
           (state.region < 0 || arr.region[i] === state.region) &&
           (!state.flaggedOnly || arr.flag[i]);
  }

  // --------------------------------------------------------------- traces
  function histBin(v, range) {
    var k = Math.floor((v - range[0]) / (range[1] - range[0]) * HIST_BINS);
    return Math.max(0, Math.min(HIST_BINS - 1, k));
  }

  function buildTraces() {
    var g = groups(), ng = g.names.length, traces = [], i, b;
    traceIndex = [];
    var hx = [], hy = [];
    for (b = 0; b < ng; b++) { hx.push(new Float64Array(HIST_BINS)); hy.push(new Float64Array(HIST_BINS)); }
    var dens = D.full ? new Float64Array(DENSITY_BINS[0] * DENSITY_BINS[1]) : null;
    var total = 0, groupTotal = new Float64Array(ng);
    for (i = 0; i < A.n; i++) {
      if (!keep(A, i)) continue;
      total++;
      var grp = g.of(A, i);
      groupTotal[grp] += 1;
      var bx = histBin(A.x[i], HX), by = histBin(A.y[i], HY);
      hx[grp][bx] += 1; hy[grp][by] += 1;
      if (dens) {
        var dx = Math.min(DENSITY_BINS[0] - 1, Math.floor(A.x[i] / 0.5 * DENSITY_BINS[0]));
        var dy = Math.min(DENSITY_BINS[1] - 1, Math.floor(A.y[i] * DENSITY_BINS[1]));
        dens[dy * DENSITY_BINS[0] + dx] += 1;
      }
    }
    if (dens) {
      var z = [], xs = [], ys = [];
      for (var c = 0; c < DENSITY_BINS[0]; c++) xs.push((c + 0.5) / DENSITY_BINS[0] * 0.5);
      for (var r = 0; r < DENSITY_BINS[1]; r++) {
        ys.push((r + 0.5) / DENSITY_BINS[1]);
        var row = [];
        for (c = 0; c < DENSITY_BINS[0]; c++) {
          var v = dens[r * DENSITY_BINS[0] + c];
          row.push(v > 0 ? Math.log10(1 + v) : null);
        }
        z.push(row);
      }
      traces.push({ type: "heatmap", x: xs, y: ys, z: z, xaxis: "x", yaxis: "y", hoverinfo: "skip",
                    showscale: false, colorscale: [[0, "#e8e8e8"], [1, "#303030"]], name: "density",
                    showlegend: false });
      traceIndex.push(null);
    }
    // scatter layer: one WebGL trace per colour group so the legend names the groups
    var members = [];
    for (b = 0; b < ng; b++) members.push([]);
    for (i = 0; i < nPts; i++) if (keep(P, i)) members[g.of(P, i)].push(i);
    var small = nPts > 20000;
    // the most populous group is drawn first so that rare groups stay visible on top;
    // legendrank keeps the legend in the fixed group order whatever the drawing order
    var order = [];
    for (b = 0; b < ng; b++) order.push(b);
    order.sort(function (p, q) { return members[q].length - members[p].length || p - q; });
    order.forEach(function (b) {
      var idx = Int32Array.from(members[b]);
      var x = new Float32Array(idx.length), y = new Float32Array(idx.length);
      for (var m = 0; m < idx.length; m++) { x[m] = P.x[idx[m]]; y[m] = P.y[idx[m]]; }
      traces.push({ type: "scattergl", mode: "markers", x: x, y: y, xaxis: "x", yaxis: "y",
                    // legend counts are of all matching examples, not of the hover sample
                    name: esc(g.names[b]) + " (" + groupTotal[b].toLocaleString("en") + ")",
                    hoverinfo: "none", showlegend: groupTotal[b] > 0, legendrank: 1000 + b,
                    marker: { color: g.colors[b], size: small ? 3 : 6, opacity: D.full ? 0.55 : 0.75 } });
      traceIndex.push(idx);
    });
    // marginal histograms (counts), stacked by the same groups
    var cx = [], cy = [];
    for (b = 0; b < HIST_BINS; b++) {
      cx.push(HX[0] + (b + 0.5) / HIST_BINS * (HX[1] - HX[0]));
      cy.push(HY[0] + (b + 0.5) / HIST_BINS * (HY[1] - HY[0]));
    }
    for (b = 0; b < ng; b++) {
      traces.push({ type: "bar", x: cx, y: Array.from(hx[b]), xaxis: "x", yaxis: "y2", width: (HX[1] - HX[0]) / HIST_BINS,
                    marker: { color: g.colors[b] }, showlegend: false, name: esc(g.names[b]),
                    hovertemplate: "variability %{x:.3f}: %{y} examples<extra></extra>" });
      traceIndex.push(null);
      traces.push({ type: "bar", orientation: "h", x: Array.from(hy[b]), y: cy, xaxis: "x2", yaxis: "y", width: (HY[1] - HY[0]) / HIST_BINS,
                    marker: { color: g.colors[b] }, showlegend: false, name: esc(g.names[b]),
                    hovertemplate: "confidence %{y:.3f}: %{x} examples<extra></extra>" });
      traceIndex.push(null);
    }
    // the selected example, ringed
    var s = state.selected;
    traces.push({ type: "scatter", mode: "markers", x: s >= 0 ? [P.x[s]] : [], y: s >= 0 ? [P.y[s]] : [],
                  xaxis: "x", yaxis: "y", hoverinfo: "skip", showlegend: false, name: "selected",
                  marker: { size: 16, color: "rgba(0,0,0,0)", line: { color: "#000", width: 2 } } });
    traceIndex.push(null);
    return { traces: traces, total: total, shown: members.reduce(function (a, m) { return a + m.length; }, 0) };
  }

  var layout = {
    margin: { l: 60, r: 10, t: 10, b: 90 }, hovermode: "closest", barmode: "stack", bargap: 0,
    dragmode: "zoom", uirevision: "keep",
    legend: { orientation: "h", y: -0.11, yanchor: "top", x: 0 },
    xaxis: { domain: [0, 0.82], range: D.axes.limits[0].slice(), title: { text: "variability" }, zeroline: false },
    yaxis: { domain: [0, 0.82], range: D.axes.limits[1].slice(), title: { text: "confidence" }, zeroline: false },
    yaxis2: { domain: [0.85, 1], anchor: "x", title: { text: "count" }, rangemode: "tozero" },
    xaxis2: { domain: [0.85, 1], anchor: "y", title: { text: "count" }, rangemode: "tozero" }
  };
  var config = { responsive: true, displaylogo: false, scrollZoom: true };

  var draws = 0;
  function draw() {
    var start = performance.now();
    var built = buildTraces();
    var label = built.total.toLocaleString("en") + " of " + A.n.toLocaleString("en") + " examples match";
    if (D.full) label += "; " + built.shown.toLocaleString("en") + " of them in the hover sample";
    document.getElementById("dc-count").textContent = label;
    return Plotly.react(gd, built.traces, layout, config).then(function () {
      // for tests and timing: how many draws so far and how long the last one took
      window.dcReport.lastDrawMs = performance.now() - start;
      document.body.setAttribute("data-draws", String(++draws));
    });
  }

  // -------------------------------------------------------- tooltip / detail
  function fields(i) {
    var f = [
      ["id", P.id[i]], ["given label", className(P.label[i])], ["suggested", className(P.sugg[i])],
      ["confidence", fmt(P.y[i])], ["variability", fmt(P.x[i])], ["correctness", fmt(P.corr[i])],
      ["region", D.regions[P.region[i]]], ["error score", fmt(P.score[i])],
      ["flagged", P.flag[i] ? "yes" : "no"]
    ];
    // why a suspect is flagged (evidence recorded by `datacarto run`)
    if (P.reason && P.reason[i]) f.push(["why", P.reason[i]]);
    if (P.evidence && P.evidence[i]) f.push(["evidence", P.evidence[i]]);
    return f;
  }
  function renderExample(container, i, withText) {
    container.textContent = "";
    var picture = P.image ? P.image[i] : null;
    if (picture) {
      var img = el("img", null, "dc-picture");
      img.src = picture;
      img.alt = "example " + P.id[i];
      container.appendChild(img);
    }
    if (withText) {
      var t = P.text ? P.text[i] : null;
      if (t !== null && t !== undefined) container.appendChild(el("p", t, "dc-text"));
      else if (!picture) container.appendChild(el("p", "(no text)", "dc-text"));
    }
    var dl = el("dl", null, "dc-fields");
    fields(i).forEach(function (kv) { dl.appendChild(el("dt", kv[0])); dl.appendChild(el("dd", kv[1])); });
    container.appendChild(dl);
  }
  var tip = document.getElementById("dc-tooltip");
  function pointOf(ev) {
    if (!ev || !ev.points || !ev.points.length) return -1;
    var pt = ev.points[0], idx = traceIndex[pt.curveNumber];
    if (!idx) return -1;
    var k = pt.pointIndex !== undefined ? pt.pointIndex : pt.pointNumber;
    return k >= 0 && k < idx.length ? idx[k] : -1;
  }
  gd.addEventListener("mouseleave", function () { tip.hidden = true; });
  function bindPlotEvents() {
    gd.on("plotly_hover", function (ev) {
      var i = pointOf(ev);
      if (i < 0) { tip.hidden = true; return; }
      renderExample(tip, i, true);
      tip.setAttribute("data-index", String(i));
      var x = ev.event ? ev.event.clientX : 0, y = ev.event ? ev.event.clientY : 0;
      tip.hidden = false;
      var w = tip.offsetWidth, h = tip.offsetHeight;
      tip.style.left = Math.max(4, Math.min(window.innerWidth - w - 4, x + 14)) + "px";
      tip.style.top = Math.max(4, Math.min(window.innerHeight - h - 4, y + 14)) + "px";
    });
    gd.on("plotly_unhover", function () { tip.hidden = true; });
    gd.on("plotly_click", function (ev) { var i = pointOf(ev); if (i >= 0) select(i); });
  }
  function select(i) {
    state.selected = i;
    document.getElementById("dc-detail-empty").hidden = true;
    var body = document.getElementById("dc-detail-body");
    body.hidden = false;
    renderExample(body, i, true);
    renderTable();
    var last = gd.data.length - 1;
    Plotly.restyle(gd, { x: [[P.x[i]]], y: [[P.y[i]]] }, [last]);
  }

  // ---------------------------------------------------------- controls
  if (!D.missing) {  // a run without full logits has no missing-class score
    var missingOpt = document.querySelector('#dc-colour option[value="missing"]');
    if (missingOpt) missingOpt.remove();
  }
  var clsSel = document.getElementById("dc-class");
  D.classes.forEach(function (c, k) { var o = el("option", c); o.value = String(k); clsSel.appendChild(o); });
  var regSel = document.getElementById("dc-region");
  D.regions.forEach(function (r, k) { var o = el("option", D.region_titles[k]); o.value = String(k); regSel.appendChild(o); });
  function onControl() {
    state.colour = document.getElementById("dc-colour").value;
    state.cls = parseInt(clsSel.value, 10);
    state.region = parseInt(regSel.value, 10);
    state.flaggedOnly = document.getElementById("dc-flagged").checked;
    table.page = 0;
    draw();
    renderTable();
  }
  ["dc-colour", "dc-class", "dc-region", "dc-flagged"].forEach(function (id) {
    document.getElementById(id).addEventListener("change", onControl);
  });

  // ------------------------------------------------------------ view (zoom)
  // "fit to data": the rule of datacarto.plot.datamap.axis_limits, with its constants from D
  function fitAxis(lo, hi, paper) {
    var span = Math.max(hi - lo, D.axes.min_span * (paper[1] - paper[0])), mid = (lo + hi) / 2;
    var pad = D.axes.margin * span;
    return [Math.max(mid - span / 2 - pad, paper[0]), Math.min(mid + span / 2 + pad, paper[1])];
  }
  function matchingLimits() {
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (var i = 0; i < A.n; i++) {
      if (!keep(A, i)) continue;
      if (A.x[i] < x0) x0 = A.x[i];
      if (A.x[i] > x1) x1 = A.x[i];
      if (A.y[i] < y0) y0 = A.y[i];
      if (A.y[i] > y1) y1 = A.y[i];
    }
    if (x0 > x1) return null;  // nothing matches the filters
    return [fitAxis(x0, x1, D.axes.paper[0]), fitAxis(y0, y1, D.axes.paper[1])];
  }
  function setView(name) {
    var lim = name === "fit" ? matchingLimits() : name === "paper" ? D.axes.paper : D.axes.limits;
    if (!lim) return Promise.resolve();
    // keep the layout in step, so that redraws after a filter keep this view
    layout.xaxis.range = lim[0].slice();
    layout.yaxis.range = lim[1].slice();
    return Plotly.relayout(gd, { "xaxis.range": lim[0].slice(), "yaxis.range": lim[1].slice() })
      .then(function () { document.body.setAttribute("data-view", name); });
  }
  document.getElementById("dc-fit").addEventListener("click", function () { setView("fit"); });
  document.getElementById("dc-paper").addEventListener("click", function () { setView("paper"); });
  document.getElementById("dc-reset").addEventListener("click", function () { setView("reset"); });

  // ------------------------------------------------------------ summary
  (function () {
    var tbody = document.querySelector("#dc-summary tbody"), tot = [0, 0, 0, 0, 0];
    D.summary.forEach(function (row) {
      var tr = el("tr");
      tr.appendChild(el("td", row[0]));
      for (var c = 1; c < row.length; c++) { tr.appendChild(el("td", row[c].toLocaleString("en"), "num")); tot[c - 1] += row[c]; }
      tbody.appendChild(tr);
    });
    var tr = el("tr");
    tr.appendChild(el("th", "all"));
    tot.forEach(function (v) { tr.appendChild(el("th", v.toLocaleString("en"), "num")); });
    tbody.appendChild(tr);
  })();

  // ------------------------------------------------------- suspects table
  var suspects = [];
  // suspects: flagged, or (with evidence) a duplicate labelled differently
  for (var s = 0; s < nPts; s++) if (P.flag[s] || (P.reason && P.reason[s])) suspects.push(s);
  function why(i) {
    var r = P.reason && P.reason[i] ? P.reason[i] : "", e = P.evidence && P.evidence[i] ? P.evidence[i] : "";
    return r && e ? r + " | " + e : r + e;
  }
  var lowerWhy = P.reason ? P.id.map(function (_, i) { return why(i).toLowerCase(); }) : null;
  var lowerText = P.text ? P.text.map(function (t) { return t ? t.toLowerCase() : ""; }) : null;
  var table = { key: "score", desc: true, page: 0, size: 50, query: "" };
  var getters = {
    score: function (i) { return P.score[i]; }, id: function (i) { return P.id[i]; },
    given: function (i) { return className(P.label[i]); }, suggested: function (i) { return className(P.sugg[i]); },
    confidence: function (i) { return P.y[i]; }, variability: function (i) { return P.x[i]; },
    correctness: function (i) { return P.corr[i]; }, region: function (i) { return D.regions[P.region[i]]; },
    text: function (i) { return P.text && P.text[i] ? P.text[i] : ""; },
    why: why
  };
  function tableRows() {
    var q = table.query, get = getters[table.key];
    var rows = suspects.filter(function (i) {
      if (!keep(P, i)) return false;
      if (!q) return true;
      return String(P.id[i]).toLowerCase().indexOf(q) >= 0 ||
             (lowerText && lowerText[i].indexOf(q) >= 0) ||
             (lowerWhy && lowerWhy[i].indexOf(q) >= 0) ||
             className(P.label[i]).toLowerCase().indexOf(q) >= 0 ||
             className(P.sugg[i]).toLowerCase().indexOf(q) >= 0;
    });
    rows.sort(function (a, b) {
      var va = get(a), vb = get(b);
      var c = typeof va === "number" ? va - vb : String(va).localeCompare(String(vb), undefined, { numeric: true });
      if (c === 0) c = P.score[b] - P.score[a];
      return table.desc ? -c : c;
    });
    return rows;
  }
  function renderTable() {
    var rows = tableRows(), tbody = document.querySelector("#dc-suspects tbody");
    var pages = Math.max(1, Math.ceil(rows.length / table.size));
    table.page = Math.min(table.page, pages - 1);
    var start = table.page * table.size, end = Math.min(rows.length, start + table.size);
    tbody.textContent = "";
    for (var r = start; r < end; r++) {
      var i = rows[r], tr = el("tr");
      tr.setAttribute("data-index", String(i));
      if (i === state.selected) tr.className = "selected";
      tr.appendChild(el("td", fmt(P.score[i]), "num"));
      tr.appendChild(el("td", P.id[i]));
      tr.appendChild(el("td", className(P.label[i])));
      tr.appendChild(el("td", className(P.sugg[i])));
      tr.appendChild(el("td", fmt(P.y[i]), "num"));
      tr.appendChild(el("td", fmt(P.x[i]), "num"));
      tr.appendChild(el("td", fmt(P.corr[i]), "num"));
      tr.appendChild(el("td", D.regions[P.region[i]]));
      var td = el("td", null, "text");
      td.appendChild(el("div", P.text && P.text[i] !== null ? P.text[i] : ""));
      tr.appendChild(td);
      var tw = el("td", null, "why");
      tw.appendChild(el("div", why(i)));
      tr.appendChild(tw);
      tbody.appendChild(tr);
    }
    document.getElementById("dc-page").textContent = rows.length ?
      (start + 1) + "–" + end + " of " + rows.length.toLocaleString("en") : "no suspects match";
    document.getElementById("dc-prev").disabled = table.page === 0;
    document.getElementById("dc-next").disabled = table.page >= pages - 1;
    document.querySelectorAll("#dc-suspects th").forEach(function (th) {
      th.className = (th.classList.contains("num") ? "num " : "") +
        (th.getAttribute("data-key") === table.key ? (table.desc ? "sorted-desc" : "sorted-asc") : "");
    });
  }
  document.querySelectorAll("#dc-suspects th").forEach(function (th) {
    th.addEventListener("click", function () {
      var key = th.getAttribute("data-key");
      if (table.key === key) table.desc = !table.desc;
      else { table.key = key; table.desc = th.classList.contains("num"); }
      table.page = 0;
      renderTable();
    });
  });
  document.querySelector("#dc-suspects tbody").addEventListener("click", function (ev) {
    var tr = ev.target.closest("tr");
    if (tr) select(parseInt(tr.getAttribute("data-index"), 10));
  });
  document.getElementById("dc-search").addEventListener("input", function (ev) {
    table.query = ev.target.value.trim().toLowerCase(); table.page = 0; renderTable();
  });
  document.getElementById("dc-prev").addEventListener("click", function () { table.page--; renderTable(); });
  document.getElementById("dc-next").addEventListener("click", function () { table.page++; renderTable(); });

  // ------------------------------------------------------------- header
  var sub = A.n.toLocaleString("en") + " examples, " + D.classes.length + " classes" +
    (D.epochs ? ", " + D.epochs + " epochs" : "") + (D.has_text ? "" : "; no example text (give --data)");
  document.getElementById("dc-subtitle").textContent = sub;
  if (D.full) {
    var mode = document.getElementById("dc-mode");
    mode.hidden = false;
    mode.textContent = "Large dataset (" + A.n.toLocaleString("en") + " examples, more than " +
      D.max_points.toLocaleString("en") + "): the map shows the density of all examples (grey, log " +
      "scale) and histograms of all examples, plus a hover layer of " + nPts.toLocaleString("en") +
      " points: the top " + D.sample.suspects.toLocaleString("en") + " suspects by score and a random " +
      (nPts - D.sample.suspects).toLocaleString("en") + " of the rest (seed " + D.sample.seed + ").";
  }
  if (D.images.capped) {
    var pics = document.getElementById("dc-images");
    pics.hidden = false;
    pics.textContent = "Pictures are embedded for the " + D.images.shown.toLocaleString("en") +
      " highest-scoring examples of the map; the others show their metrics only.";
  }
  if (D.notes && D.notes.length) {
    // how the flags were made (fit check first): plain text, never markup
    var notes = document.getElementById("dc-notes");
    notes.hidden = false;
    D.notes.forEach(function (line) {
      var li = document.createElement("li");
      li.textContent = line;
      notes.appendChild(li);
    });
  }
  var note = D.suspects_total.toLocaleString("en") + " examples flagged as likely label errors";
  if (D.duplicates_total) note += ", and " + D.duplicates_total.toLocaleString("en") +
    " more with a duplicate labelled differently";
  var flaggedShown = suspects.filter(function (i) { return P.flag[i]; }).length;
  if (D.suspects_total > flaggedShown) note += "; the table lists the top " + flaggedShown.toLocaleString("en") + " by score";
  document.getElementById("dc-suspects-note").textContent = note + ".";

  // test and automation hooks: where a point is drawn, and when the page is ready
  window.dcReport = {
    data: D, index: function (id) { return P.id.indexOf(String(id)); },
    pixelOf: function (i) {
      var fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis, box = gd.getBoundingClientRect();
      return { x: box.left + xa._offset + xa.l2p(P.x[i]), y: box.top + ya._offset + ya.l2p(P.y[i]) };
    },
    select: select, setView: setView, renderMs: null, lastDrawMs: null
  };
  renderTable();
  draw().then(function () {
    bindPlotEvents();
    window.dcReport.renderMs = performance.now() - t0;
    document.body.setAttribute("data-ready", "1");
  });
})();
