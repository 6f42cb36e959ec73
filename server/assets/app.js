// custmap dashboard: plain JS over the /api/v1 routes. The map is SVG drawn from the heatmap's
// GeoJSON (cells already floored by the server) and the dataset's district outlines.
"use strict";

const $ = (id) => document.getElementById(id);
const API = "/api/v1";
const SVG = "http://www.w3.org/2000/svg";
const RAMP = ["#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#8c2d04"];
const state = { dataset: null, districts: null, kindsLoaded: null, token: sessionStorage.getItem("custmap-token") || "" };
// Metrics the public release carries (deals and revenue are never public; the rest are exact-only).
const PUBLIC_METRICS = ["purchasing_power", "purchasing_power_share", "customers", "prospects", "buyers", "conversion"];
const PUBLIC_RES = [6, 7, 8, 9];

function showError(text) {
  $("error").textContent = text || "";
}

// With a token the server answers exact figures under its floor; without one, the public,
// differentially private release.
const isPublic = () => !state.token;

function withAuth(init = {}) {
  const headers = { ...(init.headers || {}) };
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  return { ...init, headers };
}

function showAccess() {
  const badge = $("access");
  badge.dataset.access = isPublic() ? "public" : "analyst";
  badge.textContent = isPublic()
    ? "public view: differentially private figures"
    : "analyst view: exact figures under the privacy floor";
  for (const o of $("metric").options) o.disabled = isPublic() && !PUBLIC_METRICS.includes(o.value);
  if ($("metric").selectedOptions[0]?.disabled) $("metric").value = "purchasing_power";
  $("where").disabled = $("k").disabled = isPublic();
  const res = $("res");
  res.min = isPublic() ? Math.min(...PUBLIC_RES) : 5;
  res.max = isPublic() ? Math.max(...PUBLIC_RES) : 10;
  $("res-out").textContent = res.value;
}

// An image from an exact route, fetched with the token (an <img src> cannot send one).
async function setImage(img, url, init) {
  const res = await fetch(url, withAuth(init));
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body.detail || `${res.status} ${res.statusText}`);
  }
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(await res.blob());
}

async function fetchJson(url, init) {
  const res = await fetch(url, withAuth(init));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail || `${res.status} ${res.statusText}`);
  return body;
}

const fmt = (v) => {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  const a = Math.abs(v);
  if (a >= 1e8) return (v / 1e8).toFixed(2) + " 亿";
  if (a >= 1e4) return (v / 1e4).toFixed(1) + " 万";
  if (Number.isInteger(v)) return String(v);
  return a < 1 ? v.toFixed(3) : v.toFixed(2);
};

// ---- tabs and datasets -------------------------------------------------------------------

for (const b of document.querySelectorAll(".tab")) {
  b.addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === b));
    document.querySelectorAll(".panel").forEach((p) => p.classList.toggle("active", p.id === "tab-" + b.dataset.tab));
    if (b.dataset.tab === "attribution") loadAttribution();
    if (b.dataset.tab === "placement") loadPlan();
    if (b.dataset.tab === "referrals") loadReferrals();
  });
}

async function loadDatasets() {
  const doc = await fetchJson(`${API}/datasets`);
  const sel = $("dataset");
  sel.innerHTML = "";
  for (const d of doc.datasets) {
    const o = document.createElement("option");
    o.value = d.id;
    o.textContent = `${d.id} (${d.tables.customers} customers)`;
    sel.append(o);
  }
  state.dataset = sel.value;
}

$("dataset").addEventListener("change", async () => {
  state.dataset = $("dataset").value;
  state.districts = null;
  state.kindsLoaded = null;
  await loadMap();
});

// ---- map ----------------------------------------------------------------------------------

function quantileBreaks(values, classes) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return [];
  const breaks = [];
  for (let i = 1; i < classes; i++) breaks.push(v[Math.min(v.length - 1, Math.floor((i * v.length) / classes))]);
  return [...new Set(breaks)];
}

function classOf(value, breaks) {
  let i = 0;
  while (i < breaks.length && value >= breaks[i]) i++;
  return Math.round((i * (RAMP.length - 1)) / Math.max(1, breaks.length));
}

function ringsOf(geometry) {
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

function pathOf(polygons, project) {
  let d = "";
  for (const poly of polygons)
    for (const ring of poly) {
      ring.forEach(([lng, lat], i) => {
        const [x, y] = project(lng, lat);
        d += (i ? "L" : "M") + x.toFixed(2) + "," + y.toFixed(2);
      });
      d += "Z";
    }
  return d;
}

function mapParams() {
  const p = new URLSearchParams({ res: $("res").value, location: $("location").value, format: "geojson" });
  if (isPublic()) return p;
  p.set("k", $("k").value);
  const where = $("where").value.trim();
  if (where) p.set("where", where);
  return p;
}

async function loadMap() {
  const svg = $("map");
  svg.dataset.state = "loading";
  const metric = $("metric").value;
  try {
    if (!state.districts) {
      state.districts = await fetchJson(`${API}/datasets/${state.dataset}/districts`).catch(() => ({ features: [] }));
    }
    const cells = await fetchJson(`${API}/datasets/${state.dataset}/heatmap?${mapParams()}`);
    drawMap(cells, metric);
    const s = cells.suppressed || {};
    const r = (cells.privacy || {}).release || {};
    $("map-status").textContent = cells.privacy
      ? `${cells.features.length} cells at res ${cells.res}; public figures, differentially private ` +
        `(ε ${cells.privacy.epsilon_total} per dataset, δ ${cells.privacy.delta_total}): every figure carries noise, ` +
        `cells under about ${r.threshold} customers are not shown`
      : `${cells.features.length} cells at res ${cells.res}; k = ${cells.k}: ` +
        `${s.merged || 0} small cells merged into parents, ${s.dropped || 0} dropped, ` +
        `${s.withheld || 0} with a figure withheld (under k people)`;
    showError("");
  } catch (e) {
    showError(e.message);
    svg.dataset.state = "error";
    return;
  }
  svg.dataset.metric = metric;
  svg.dataset.draws = Number(svg.dataset.draws || 0) + 1;
  svg.dataset.state = "ready";
}

function drawMap(cells, metric) {
  const svg = $("map");
  svg.innerHTML = "";
  const feats = cells.features;
  // Frame the cells (or the districts when there are none); equirectangular scaled by cos(lat).
  let box = [Infinity, Infinity, -Infinity, -Infinity];
  const grow = (f) => ringsOf(f.geometry).flat(2).forEach(([x, y]) => {
    box = [Math.min(box[0], x), Math.min(box[1], y), Math.max(box[2], x), Math.max(box[3], y)];
  });
  (feats.length ? feats : state.districts.features).forEach(grow);
  if (!Number.isFinite(box[0])) box = [114, 30, 115, 31];
  const k = Math.cos((((box[1] + box[3]) / 2) * Math.PI) / 180);
  // About 1000 units across whatever the extent, so labels keep their size (browsers clamp tiny fonts).
  const scale = 1000 / Math.max(1e-9, (box[2] - box[0]) * k, box[3] - box[1]);
  const project = (lng, lat) => [(lng - box[0]) * k * scale, (box[3] - lat) * scale];
  const [w, h] = project(box[2], box[1]);
  const pad = Math.max(w, h) * 0.04;
  const base = [-pad, -pad, w + 2 * pad, h + 2 * pad];
  svg.setAttribute("viewBox", base.join(" "));

  const values = feats.map((f) => f.properties[metric]);
  const breaks = quantileBreaks(values, RAMP.length);
  const g = document.createElementNS(SVG, "g");
  feats.forEach((f, i) => {
    const p = document.createElementNS(SVG, "path");
    p.setAttribute("d", pathOf(ringsOf(f.geometry), project));
    const v = values[i];
    p.setAttribute("fill", Number.isFinite(v) ? RAMP[classOf(v, breaks)] : "#ddd");
    p.setAttribute("class", f.properties.res < cells.res ? "hex merged" : "hex");
    p.dataset.index = i;
    g.append(p);
  });
  svg.append(g);
  const outlines = document.createElementNS(SVG, "g");
  for (const f of state.districts.features) {
    const p = document.createElementNS(SVG, "path");
    p.setAttribute("d", pathOf(ringsOf(f.geometry), project));
    p.setAttribute("class", "district");
    outlines.append(p);
    const cp = f.properties.cp;
    if (cp) {
      const [x, y] = project(cp[0], cp[1]);
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", x);
      t.setAttribute("y", y);
      t.setAttribute("class", "label");
      t.setAttribute("font-size", (base[2] / 80).toFixed(2));
      t.textContent = f.properties.name;
      outlines.append(t);
    }
  }
  svg.append(outlines);
  drawLegend(metric, breaks, values);
  g.addEventListener("mousemove", (e) => tooltip(e, feats, metric));
  g.addEventListener("mouseleave", () => ($("tooltip").hidden = true));
}

function drawLegend(metric, breaks, values) {
  const legend = $("legend");
  const finite = values.filter(Number.isFinite);
  const lo = finite.length ? Math.min(...finite) : 0;
  const hi = finite.length ? Math.max(...finite) : 0;
  let html = `<strong>${metric.replaceAll("_", " ")}</strong> (quantile classes)`;
  // Class c holds values in [breaks[c-1], breaks[c]); the ends are the data's min and max.
  for (let c = 0; c <= breaks.length; c++) {
    const from = c === 0 ? lo : breaks[c - 1];
    const to = c === breaks.length ? hi : breaks[c];
    if (c === 0 && lo >= breaks[0]) continue;
    const colour = RAMP[Math.round((c * (RAMP.length - 1)) / Math.max(1, breaks.length))];
    html += `<div class="row"><span class="swatch" style="background:${colour}"></span>${fmt(from)} – ${fmt(to)}</div>`;
  }
  legend.innerHTML =
    html +
    `<div class="row"><span class="swatch" style="background:#fff;opacity:.55;border:1px solid #ccc"></span>faded: merged to a coarser cell</div>` +
    `<div class="row"><span class="swatch" style="background:#ddd"></span>grey: withheld (fewer than k people)</div>`;
}

const TIP_FIELDS = [
  "customers", "prospects", "buyers", "deals", "revenue", "purchasing_power",
  "purchasing_power_share", "conversion", "conversion_smoothed", "lift",
];

function tooltip(e, feats, metric) {
  const i = e.target.dataset.index;
  const tip = $("tooltip");
  if (i === undefined) return;
  const p = feats[i].properties;
  const rows = TIP_FIELDS.filter((f) => f in p)
    .map((f) => `<tr><td>${f === metric ? "<b>" + f + "</b>" : f}</td><td>${fmt(p[f])}</td></tr>`)
    .join("");
  tip.innerHTML = `<div>${p.hex_id} · res ${p.res}</div><table>${rows}</table>`;
  const stage = tip.parentElement.getBoundingClientRect();
  tip.hidden = false;
  const x = e.clientX - stage.left + 14;
  const y = e.clientY - stage.top + 14;
  tip.style.left = Math.min(x, stage.width - tip.offsetWidth - 4) + "px";
  tip.style.top = Math.min(y, stage.height - tip.offsetHeight - 4) + "px";
}

// Wheel zooms about the pointer; drag pans.
(function panZoom() {
  const svg = $("map");
  let drag = null;
  const box = () => svg.getAttribute("viewBox").split(" ").map(Number);
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x, y, w, h] = box();
    const r = svg.getBoundingClientRect();
    const f = e.deltaY > 0 ? 1.2 : 1 / 1.2;
    const px = x + ((e.clientX - r.left) / r.width) * w;
    const py = y + ((e.clientY - r.top) / r.height) * h;
    svg.setAttribute("viewBox", [px - (px - x) * f, py - (py - y) * f, w * f, h * f].join(" "));
  }, { passive: false });
  svg.addEventListener("mousedown", (e) => (drag = { x: e.clientX, y: e.clientY, b: box() }));
  window.addEventListener("mouseup", () => (drag = null));
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const r = svg.getBoundingClientRect();
    const [x, y, w, h] = drag.b;
    const s = Math.max(w / r.width, h / r.height);
    svg.setAttribute("viewBox", [x - (e.clientX - drag.x) * s, y - (e.clientY - drag.y) * s, w, h].join(" "));
  });
})();

$("res").addEventListener("input", () => ($("res-out").textContent = $("res").value));
$("map-controls").addEventListener("submit", (e) => {
  e.preventDefault();
  loadMap();
});
for (const id of ["metric", "location", "res", "k"]) $(id).addEventListener("change", loadMap);

// ---- attribution --------------------------------------------------------------------------

function table(el, rows, columns) {
  el.innerHTML =
    "<tr>" + columns.map((c) => `<th>${c.replaceAll("_", " ")}</th>`).join("") + "</tr>" +
    rows.map((r) => "<tr>" + columns.map((c) => `<td>${fmt(r[c])}</td>`).join("") + "</tr>").join("");
}

const NEEDS_TOKEN = "needs an analyst token: paste one above (the public sees only the differentially private heatmap)";

async function loadAttribution() {
  if (isPublic()) {
    $("attr-table").innerHTML = "";
    showError(`Attribution ${NEEDS_TOKEN}`);
    return;
  }
  const q = new URLSearchParams({ model: $("model").value, by: $("by").value, window: $("window").value });
  const base = `${API}/datasets/${state.dataset}`;
  try {
    const doc = await fetchJson(`${base}/attribution?${q}`);
    const cols = [$("by").value, "conversions", "revenue", "cost", "roi", "cost_per_conversion"].filter(
      (c) => !doc.rows.length || c in doc.rows[0],
    );
    table($("attr-table"), doc.rows, cols);
    const chart = (extra) => `${base}/attribution?${new URLSearchParams({ ...Object.fromEntries(q), format: "png", ...extra })}`;
    await Promise.all([
      setImage($("chart-roi"), chart({ chart: "roi" })),
      setImage($("chart-compare"), chart({ model: "all", chart: "compare" })),
      setImage($("chart-monthly"), chart({ chart: "monthly" })),
      setImage($("chart-funnel"), `${base}/funnel?by=${$("by").value}&format=png`),
    ]);
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

$("attr-controls").addEventListener("submit", (e) => {
  e.preventDefault();
  loadAttribution();
});

// ---- referrals ----------------------------------------------------------------------------

const pct = (x) => (x == null ? "n/a" : `${(x * 100).toFixed(1)}%`);

async function loadReferrals() {
  if (isPublic()) {
    $("ref-table").innerHTML = "";
    $("ref-summary").textContent = "";
    showError(`Referral chains ${NEEDS_TOKEN}`);
    return;
  }
  const by = $("ref-by").value;
  try {
    const doc = await fetchJson(`${API}/datasets/${state.dataset}/referrals?by=${by}`);
    const s = doc.summary;
    $("ref-summary").textContent =
      `${s.advocates} advocates referred ${s.referred_customers} of ${s.customers} customers; ` +
      `referred buyers ${pct(s.referred_share_of_buyers)} of all buyers, ${pct(s.referred_share_of_revenue)} of revenue; ` +
      `conversion referred ${pct(s.referred_conversion)} vs others ${pct(s.other_conversion)}; ` +
      `chain depth ${s.depth_histogram.join(" / ")}; ${s.ignored_links} links ignored`;
    const cols =
      by === "channel"
        ? ["channel", "customers", "buyers", "revenue", "referred_customers", "referred_buyers", "referred_revenue", "multiplier"]
        : ["customer_id", "channel", "own_revenue", "direct_referrals", "direct_buyers", "chain_customers", "chain_buyers", "chain_revenue", "generations"];
    table($("ref-table"), doc.rows.slice(0, 50), cols);
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

$("ref-controls").addEventListener("submit", (e) => {
  e.preventDefault();
  loadReferrals();
});

// ---- placement ----------------------------------------------------------------------------

function planBody(extra) {
  const kinds = [...document.querySelectorAll("#kinds input:checked")].map((c) => c.value);
  const body = {
    budget: Number($("budget").value),
    reach: $("reach").value,
    weight: $("weight").value,
    ...extra,
  };
  const where = $("plan-where").value.trim();
  if (where) body.where = where;
  if (state.kindsLoaded && kinds.length) body.kinds = kinds;
  return body;
}

async function loadPlan() {
  if (isPublic()) {
    $("plan-table").innerHTML = "";
    showError(`Placement ${NEEDS_TOKEN}`);
    return;
  }
  const url = `${API}/datasets/${state.dataset}/placement`;
  const post = (body) =>
    fetch(url, withAuth({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }));
  try {
    const res = await post(planBody({}));
    const doc = await res.json();
    if (!res.ok) throw new Error(doc.detail || res.statusText);
    if (!state.kindsLoaded) {
      const box = $("kinds");
      box.querySelectorAll("label").forEach((l) => l.remove());
      for (const b of doc.baselines) {
        const l = document.createElement("label");
        l.innerHTML = `<input type="checkbox" value="${b.kind}" checked> ${b.kind.replaceAll("_", " ")}`;
        box.append(l);
      }
      state.kindsLoaded = true;
    }
    $("plan-status").textContent =
      `${doc.sites.length} sites, cost ${fmt(doc.cost)} of ${fmt(doc.budget)}; reach ${fmt(doc.reach)} of ` +
      `${fmt(doc.prospects)} prospects; ` +
      (doc.proven_optimal ? "proven optimal" : `optimum at most ${fmt(doc.upper_bound)} (gap ≤ ${(doc.gap * 100).toFixed(1)}%)`);
    table($("plan-table"), doc.sites, ["rank", "site_id", "kind", "cost", "marginal_reach", "cumulative_reach", "cost_per_reached"]);
    table($("baseline-table"), doc.baselines, ["kind", "sites", "cost", "reach", "cost_per_reached"]);
    const img = await post(planBody({ format: "png", plot: "map" }));
    if (img.ok) $("plan-map").src = URL.createObjectURL(await img.blob());
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

$("plan-controls").addEventListener("submit", (e) => {
  e.preventDefault();
  loadPlan();
});

// ---- start --------------------------------------------------------------------------------

$("token").value = state.token;
$("token").addEventListener("change", () => {
  state.token = $("token").value.trim();
  if (state.token) sessionStorage.setItem("custmap-token", state.token);
  else sessionStorage.removeItem("custmap-token");
  state.kindsLoaded = null;
  showAccess();
  loadMap();
  const tab = document.querySelector(".tab.active").dataset.tab;
  if (tab === "attribution") loadAttribution();
  if (tab === "placement") loadPlan();
  if (tab === "referrals") loadReferrals();
});

showAccess();
loadDatasets().then(loadMap).catch((e) => showError(e.message));
