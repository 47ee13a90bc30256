// The territory map: plans drawn from the service's vector tiles, diagnostics, compare mode and optimization.
// Plain ES module, no build step; MapLibre GL JS is vendored by `make assets` (global `maplibregl`).

const PALETTE = [
  "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2",
  "#edc948", "#ff9da7", "#9c755f", "#79706e", "#8cd17d", "#d4a6c8",
];
const NO_OWNER = "#f4f4f2";
const POLL_MS = 1000;

const state = {
  plans: [],
  plan: null,        // the plan shown (object from GET /plans)
  compare: null,     // the plan compared with (or null)
  level: "county",
  reps: new Map(),   // external id -> rep
  repColors: new Map(), // external id -> palette index (from the tiles)
  repColorsComplete: false, // every rep has its colour: no more scans of the loaded tiles
  diagnostics: null,
  comparison: null,
  compareDiagnostics: null, // diagnostics of the compared plan (its balance)
  measure: "workload",
  selected: null,    // unit code of the open popup
  job: null,         // the optimization job last started from the page
  ready: false,      // true once the first plan is drawn
  loading: false,    // true while a plan selection loads (data and tiles)
  errors: [],
};

const $ = (id) => document.getElementById(id);
const map = createMap();
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
map.addControl(new maplibregl.ScaleControl({ unit: "imperial" }), "bottom-right");
window.territoryMap = { map, state };

function createMap() {
  try {
    return new maplibregl.Map({
      container: "map",
      style: baseStyle(),
      center: [-75, 42],
      zoom: 5,
      attributionControl: { compact: true },
    });
  } catch (error) {
    showError("The map cannot be drawn: it needs WebGL, which this browser does not provide.");
    throw error;
  }
}

// ---------------------------------------------------------------- API and errors

class ApiError extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Accept: "application/json", ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && (body.detail || body.title);
    throw new ApiError(`${options.method || "GET"} ${path}: ${detail || response.statusText} (${response.status})`);
  }
  return body;
}

function showError(error) {
  const message = error instanceof Error ? error.message : String(error);
  state.errors.push(message);
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

function guarded(fn) {
  return (...args) => Promise.resolve(fn(...args)).catch(showError);
}

// ---------------------------------------------------------------- formatting

function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function signed(value, digits = 1, suffix = "") {
  if (value === null || value === undefined) return "–";
  const text = fmt(Math.abs(value), digits);
  return `${value > 0 ? "+" : value < 0 ? "−" : "±"}${text}${suffix}`;
}

function repLabel(id) {
  if (!id) return "nobody";
  const rep = state.reps.get(id);
  return rep ? `${rep.name} (${id})` : id;
}

function repColor(id) {
  const index = state.repColors.get(id);
  return index === undefined ? "#bbb" : PALETTE[index % PALETTE.length];
}

// ---------------------------------------------------------------- map style

function hatch(rgba, spacing = 6, width = 2) {
  const size = spacing * 2;
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      if ((x + y) % spacing < width) data.set(rgba, (y * size + x) * 4);
    }
  }
  return { width: size, height: size, data };
}

function paletteExpression() {
  const match = ["match", ["to-number", ["coalesce", ["get", "color"], -1]]];
  PALETTE.forEach((color, index) => match.push(index, color));
  match.push(NO_OWNER);
  return ["case", ["==", ["get", "uncovered"], true], NO_OWNER, match];
}

function baseStyle() {
  return {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#dfe6ec" } }],
  };
}

function tileUrl() {
  const params = new URLSearchParams();
  if (state.plan) params.set("plan", state.plan.id);
  if (state.compare) params.set("compare", state.compare.id);
  const query = params.toString();
  return `${location.origin}/tiles/${state.level}/{z}/{x}/{y}.mvt${query ? `?${query}` : ""}`;
}

const TOGGLES = {
  "toggle-contested": ["contested", "contested-outline"],
  "toggle-uncovered": ["uncovered", "uncovered-outline"],
  "toggle-white-space": ["white-space"],
  "toggle-reps": ["rep-homes"],
};

function layerVisible(id) {
  if (id === "changed" || id === "changed-outline") return Boolean(state.compare);
  const toggle = Object.keys(TOGGLES).find((key) => TOGGLES[key].includes(id));
  return toggle ? $(toggle).checked : true;
}

function fillOpacity() {
  return state.compare ? 0.45 : 0.78;
}

function unitLayer(id, type, paint, filter, extra = {}) {
  const layer = { id, type, source: "tiles", "source-layer": "units", paint, ...extra };
  if (filter) layer.filter = filter;
  return layer;
}

function tileLayers() {
  const flag = (name) => ["==", ["get", name], true];
  return [
    unitLayer("territory-fill", "fill", { "fill-color": paletteExpression(), "fill-opacity": fillOpacity() }),
    unitLayer("unit-borders", "line", {
      "line-color": "#ffffff",
      "line-width": ["interpolate", ["linear"], ["zoom"], 4, 0.2, 6, 0.6, 9, 1.2],
      "line-opacity": ["interpolate", ["linear"], ["zoom"], 4, 0.15, 6, 0.8],
    }, null, { minzoom: 4 }),
    {
      id: "territory-outline", type: "line", source: "tiles", "source-layer": "territories",
      paint: {
        "line-color": "#2b2f36",
        "line-width": ["interpolate", ["linear"], ["zoom"], 4, 0.8, 8, 2.2],
        "line-opacity": 0.85,
      },
    },
    unitLayer("white-space", "line", { "line-color": "#1a7f37", "line-width": 2.2, "line-dasharray": [2, 1] },
      flag("white_space")),
    unitLayer("uncovered", "fill", { "fill-pattern": "hatch-uncovered" }, flag("uncovered")),
    unitLayer("uncovered-outline", "line", { "line-color": "#555", "line-width": 1.4, "line-dasharray": [2, 2] },
      flag("uncovered")),
    unitLayer("contested", "fill", { "fill-pattern": "hatch-contested" }, flag("contested")),
    unitLayer("contested-outline", "line", { "line-color": "#c81428", "line-width": 1.6 }, flag("contested")),
    unitLayer("changed", "fill", { "fill-pattern": "hatch-changed" }, flag("changed")),
    unitLayer("changed-outline", "line", { "line-color": "#d6007e", "line-width": 2.6 }, flag("changed")),
    unitLayer("selected", "line", { "line-color": "#111", "line-width": 3 }, ["==", ["get", "code"], ""]),
  ];
}

// The tile source is rebuilt (not re-pointed with setTiles) when the plan or comparison changes:
// re-pointing while tiles are still loading can leave tiles of the previous URL on the map.
function addTileLayers() {
  map.addSource("tiles", { type: "vector", tiles: [tileUrl()], minzoom: 0, maxzoom: 14 });
  state.repColorsComplete = false;
  for (const layer of tileLayers()) {
    layer.layout = { ...(layer.layout || {}), visibility: layerVisible(layer.id) ? "visible" : "none" };
    map.addLayer(layer, "rep-homes");
  }
}

function removeTileLayers() {
  for (const layer of tileLayers()) if (map.getLayer(layer.id)) map.removeLayer(layer.id);
  if (map.getSource("tiles")) map.removeSource("tiles");
}

function addLayers() {
  map.addImage("hatch-contested", hatch([200, 20, 40, 230]));
  map.addImage("hatch-uncovered", hatch([90, 90, 90, 170], 8, 1));
  map.addImage("hatch-changed", hatch([214, 0, 126, 200], 6, 3));
  map.addSource("reps", { type: "geojson", data: repsGeoJSON() });
  map.addLayer({
    id: "rep-homes", type: "circle", source: "reps",
    layout: { visibility: layerVisible("rep-homes") ? "visible" : "none" },
    paint: {
      "circle-radius": ["interpolate", ["linear"], ["zoom"], 4, 5, 9, 8],
      "circle-color": ["get", "fill"],
      "circle-stroke-color": "#1d2127",
      "circle-stroke-width": 2,
    },
  });
}

// ---------------------------------------------------------------- data

async function loadPlans() {
  state.plans = await api("/plans");
  return state.plans;
}

async function loadReps() {
  const page = await api("/reps?limit=5000");
  state.reps = new Map(page.items.map((rep) => [rep.external_id, rep]));
  state.repColorsComplete = false;
}

function repsGeoJSON() {
  const features = [...state.reps.values()]
    .filter((rep) => rep.lon !== null && rep.lat !== null)
    .map((rep) => ({
      type: "Feature",
      geometry: { type: "Point", coordinates: [rep.lon, rep.lat] },
      properties: { rep: rep.external_id, name: rep.name, fill: repColor(rep.external_id) },
    }));
  return { type: "FeatureCollection", features };
}

// The first view: the box of every unit of the level (from the server, not from downloaded geometry) and the
// rep homes. A box across longitude 180 (the Aleutians) comes with its east edge above 180.
async function unitBounds(level) {
  const { bbox } = await api(`/units/extent?level=${encodeURIComponent(level)}`);
  const bounds = new maplibregl.LngLatBounds();
  if (bbox) bounds.extend([[bbox[0], bbox[1]], [bbox[2], bbox[3]]]);
  const shifted = Boolean(bbox) && bbox[2] > 180;
  for (const rep of state.reps.values()) {
    if (rep.lon !== null && rep.lat !== null) bounds.extend([shifted && rep.lon < 0 ? rep.lon + 360 : rep.lon, rep.lat]);
  }
  return bounds.isEmpty() ? null : bounds;
}

async function defaultLevel() {
  const collection = await api("/units?limit=1&simplify=1");
  return collection.features.length ? collection.features[0].properties.level : "county";
}

// Rep colours come from the tiles (stable per rep); the panel and the rep markers reuse them. Once every rep
// has one, the scan of the loaded tiles stops until the reps or the tile source change.
function collectRepColors() {
  if (state.repColorsComplete || !map.getSource("tiles")) return;
  let changed = false;
  for (const feature of map.querySourceFeatures("tiles", { sourceLayer: "territories" })) {
    const { rep, color } = feature.properties;
    if (rep && color !== undefined && state.repColors.get(rep) !== Number(color)) {
      state.repColors.set(rep, Number(color));
      changed = true;
    }
  }
  state.repColorsComplete = state.reps.size > 0 && [...state.reps.keys()].every((id) => state.repColors.has(id));
  if (changed) {
    map.getSource("reps").setData(repsGeoJSON());
    renderBalance();
  }
}

// ---------------------------------------------------------------- plan and compare selection

function planLabel(plan) {
  return `#${plan.id} ${plan.name} · ${plan.status}`;
}

function renderPlanOptions() {
  const planSelect = $("plan-select");
  const compareSelect = $("compare-select");
  planSelect.replaceChildren(...state.plans.map((plan) => new Option(planLabel(plan), plan.id)));
  planSelect.value = state.plan ? String(state.plan.id) : "";
  const others = state.plans.filter((p) => state.plan && p.id !== state.plan.id && p.level === state.plan.level);
  compareSelect.replaceChildren(
    new Option("(no comparison)", ""),
    ...others.map((plan) => new Option(planLabel(plan), plan.id)),
  );
  compareSelect.value = state.compare ? String(state.compare.id) : "";
}

function renderPlanMeta() {
  const plan = state.plan;
  $("opt-title").textContent = plan ? `Optimize plan #${plan.id}` : "Plan from scratch";
  $("opt-max-moved").disabled = !plan;
  if (!plan) {
    $("plan-meta").textContent = "No plans yet: import one (POST /plans/imports) or optimize from scratch.";
    return;
  }
  const summary = state.diagnostics ? state.diagnostics.summary : null;
  const parts = [`${plan.level} plan, version ${plan.version}`, plan.source];
  if (summary) parts.push(`${fmt(summary.territories)} territories`, `${fmt(summary.units)} units`);
  $("plan-meta").textContent = parts.join(" · ");
}

let selection = 0; // the latest plan selection: answers to older ones are dropped

async function selectPlan(planId, compareId = null) {
  const token = ++selection;
  state.loading = true;
  state.plan = state.plans.find((p) => p.id === Number(planId)) || null;
  state.compare = state.plans.find((p) => p.id === Number(compareId)) || null;
  if (state.plan) state.level = state.plan.level;
  state.diagnostics = null;
  state.comparison = null;
  state.compareDiagnostics = null;
  closePopup();
  renderPlanOptions();
  updateHash();
  refreshTiles();
  const drawn = new Promise((resolve) => map.once("idle", resolve));
  try {
    const [diagnostics, comparison, compareDiagnostics] = await Promise.all([
      state.plan ? api(`/plans/${state.plan.id}/diagnostics?limit=100000&account_limit=0`) : null,
      state.plan && state.compare ? api(`/plans/${state.plan.id}/compare/${state.compare.id}?limit=100000&account_limit=0`) : null,
      state.compare ? api(`/plans/${state.compare.id}/diagnostics?limit=0`) : null,
    ]);
    if (token !== selection) return;
    state.diagnostics = diagnostics;
    state.comparison = comparison;
    state.compareDiagnostics = compareDiagnostics;
    renderPlanMeta();
    renderFlags();
    renderBalance();
    renderComparison();
    await drawn;
  } finally {
    if (token === selection) state.loading = false;
  }
}

function refreshTiles() {
  if (!map.getLayer("rep-homes")) return;
  removeTileLayers();
  addTileLayers();
}

function updateHash() {
  const params = new URLSearchParams();
  if (state.plan) params.set("plan", state.plan.id);
  if (state.compare) params.set("compare", state.compare.id);
  history.replaceState(null, "", `#${params}`);
}

function hashSelection() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { plan: Number(params.get("plan")) || null, compare: Number(params.get("compare")) || null };
}

// ---------------------------------------------------------------- panel: flags, balance, comparison

function renderFlags() {
  const summary = state.diagnostics ? state.diagnostics.summary : {};
  $("count-contested").textContent = summary.contested_units === undefined ? "" : fmt(summary.contested_units);
  $("count-uncovered").textContent = summary.uncovered_units === undefined ? "" : fmt(summary.uncovered_units);
  $("count-white-space").textContent = summary.white_space_units === undefined ? "" : fmt(summary.white_space_units);
}

function tolerancePct() {
  const value = Number($("opt-tolerance").value);
  return value > 0 ? value : 5;
}

function balanceBar(deviation, tolerance, scale, before = null) {
  const offset = (value) => (Math.max(-scale, Math.min(scale, value)) / scale) * 50;
  const band = `<div class="band" style="left:${50 - (tolerance / scale) * 50}%;width:${(tolerance / scale) * 100}%"></div>`;
  const side = deviation >= 0 ? "left:50%" : "right:50%";
  const over = Math.abs(deviation) > tolerance ? " over" : "";
  const bar = `<div class="bar${over}" style="${side};width:${Math.abs(offset(deviation))}%"></div>`;
  const ghost = before === null ? "" : `<div class="before" style="left:calc(${50 + offset(before)}% - 1px)"></div>`;
  return `<div class="track">${band}<div class="target"></div>${bar}${ghost}</div>`;
}

// A territory this many times the plan's median distance to home is flagged: its rep works away from home.
const FAR_FROM_HOME = 3;

function median(values) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// One row per territory; in compare mode the deviation in the compared plan, with the shown plan's as a tick.
function balanceRows(measure) {
  const row = (t, before = null) => ({
    rep: t.rep, territory: t.territory, units: t.units, load: t.loads[measure],
    target: t.target[measure], deviation: t.deviation_pct[measure], km: t.weighted_distance_km, before,
  });
  const rows = state.diagnostics.territories.map((t) => row(t));
  const other = state.compareDiagnostics;
  if (!other) return rows;
  const shown = new Map(rows.map((r) => [r.rep || r.territory, r.deviation]));
  return other.territories.map((t) => row(t, shown.get(t.rep || t.territory) ?? null));
}

function renderBalance() {
  const table = $("balance");
  if (!state.diagnostics) {
    table.innerHTML = "";
    $("balance-summary").textContent = "";
    return;
  }
  const measure = state.measure;
  const tolerance = tolerancePct();
  const rows = balanceRows(measure);
  const deviations = rows.flatMap((row) => [row.deviation ?? 0, row.before ?? 0]);
  const scale = Math.max(10, Math.ceil(Math.max(tolerance * 2, ...deviations.map(Math.abs)) / 5) * 5);
  const outside = rows.filter((row) => Math.abs(row.deviation ?? 0) > tolerance).length;
  const plan = state.compare || state.plan;
  $("balance-summary").textContent =
    `${state.compare ? `plan #${plan.id} (ticks: #${state.plan.id}) · ` : ""}` +
    `target ${fmt(rows.length ? rows[0].target : 0, 1)} ${measure} per territory · ` +
    `band ±${fmt(tolerance, 1)} % · ${outside} of ${rows.length} outside · bars span ±${scale} %`;
  const farKm = FAR_FROM_HOME * median(rows.map((row) => row.km).filter((km) => km !== null && km !== undefined));
  const head = `<tr><th>Territory</th><th class="num">Units</th><th class="num">${escapeHtml(measure)}</th>` +
    `<th class="num">Dev.</th><th class="bar-cell"></th>` +
    `<th class="num" title="workload-weighted mean distance from the territory's units to its rep's home">km</th></tr>`;
  const body = rows.map((row) => {
    const bad = Math.abs(row.deviation ?? 0) > tolerance ? "bad" : "";
    const far = row.km > farKm
      ? ` class="num km far" title="more than ${FAR_FROM_HOME} times the median: the rep works away from home"`
      : ' class="num km"';
    const was = row.before === null ? "" : ` title="was ${signed(row.before, 1, "%")} in #${state.plan.id}"`;
    return `<tr data-rep="${escapeHtml(row.rep)}">` +
      `<td title="${escapeHtml(row.territory)}"><span class="dot" style="background:${repColor(row.rep)}"></span>` +
      `${escapeHtml(state.reps.get(row.rep)?.name || row.rep || row.territory)}</td>` +
      `<td class="num">${fmt(row.units)}</td><td class="num">${fmt(row.load, measure === "value" ? 0 : 1)}</td>` +
      `<td class="num ${bad}"${was}>${signed(row.deviation, 1, "%")}</td>` +
      `<td class="bar-cell">${balanceBar(row.deviation ?? 0, tolerance, scale, row.before)}</td>` +
      `<td${far}>${fmt(row.km, 0)}</td></tr>`;
  });
  table.innerHTML = head + body.join("");
}

const COMPARED_METRICS = [
  ["Max deviation, workload %", (m) => m.max_abs_deviation_pct?.workload, 1],
  ["Contested units", (m) => m.contested_units, 0],
  ["Uncovered units", (m) => m.uncovered_units, 0],
  ["Fragmented territories", (m) => m.fragmented_territories, 0],
  ["Misaligned accounts", (m) => m.misaligned_accounts, 0],
  ["White-space units", (m) => m.white_space_units, 0],
];

function renderComparison() {
  const comparison = state.comparison;
  $("compare-card").hidden = !comparison;
  if (!comparison) return;
  $("compare-title").textContent = `#${comparison.base.id} → #${comparison.other.id}`;
  $("compare-summary").innerHTML = [
    ["units change owner", fmt(comparison.units_moved), `${fmt(comparison.units_moved_pct, 1)} %`],
    ["of workload moves", `${fmt(comparison.workload_moved_pct, 1)} %`, ""],
    ["accounts change owner", fmt(comparison.accounts_moved), ""],
  ].map(([label, value, note]) => `<div class="kpi"><b>${value}</b><span>${label}${note ? ` (${note})` : ""}</span></div>`)
    .join("");
  const { base, other } = comparison.metrics;
  const metricRows = COMPARED_METRICS.map(([label, get, digits]) => {
    const d = get(other) === null || get(base) === null ? null : get(other) - get(base);
    const cls = d > 0 ? "worse" : d < 0 ? "better" : "";
    return `<tr><td>${label}</td><td class="num">${fmt(get(base), digits)}</td><td class="num">${fmt(get(other), digits)}</td>` +
      `<td class="num ${cls}">${d === null ? "–" : signed(d, digits)}</td></tr>`;
  });
  $("compare-metrics").innerHTML =
    `<tr><th>Metric</th><th class="num">#${comparison.base.id}</th><th class="num">#${comparison.other.id}</th><th class="num">Δ</th></tr>` +
    metricRows.join("");
  $("compare-reps").innerHTML =
    `<tr><th>Rep</th><th class="num">+units</th><th class="num">−units</th><th class="num">workload</th></tr>` +
    comparison.reps.map((r) => `<tr><td><span class="dot" style="background:${repColor(r.rep)}"></span>` +
      `${escapeHtml(state.reps.get(r.rep)?.name || r.rep)}</td><td class="num">${fmt(r.units_gained)}</td>` +
      `<td class="num">${fmt(r.units_lost)}</td><td class="num">${signed(r.workload_net, 1)}</td></tr>`).join("");
}

// ---------------------------------------------------------------- popups

let popup = null;

function closePopup() {
  const open = popup;
  popup = null;
  state.selected = null;
  if (open) open.remove();
  if (map.getLayer("selected")) map.setFilter("selected", ["==", ["get", "code"], ""]);
}

function ownersOf(code) {
  const diagnostics = state.diagnostics;
  if (!diagnostics) return [];
  const repOf = new Map(diagnostics.territories.map((t) => [t.territory, t.rep]));
  const contested = diagnostics.contested.units.find((u) => u.code === code);
  return contested ? contested.territories.map((t) => repOf.get(t) || t) : [];
}

function ownerList(value) {
  if (Array.isArray(value)) return value;
  return value ? String(value).split(",").map((s) => s.trim()).filter(Boolean) : [];
}

function changeHtml(p) {
  const move = state.comparison?.moves.find((m) => m.unit === p.code);
  const from = move ? move.from : ownerList(p.from_owner);
  const to = move ? move.to : ownerList(p.to_owner);
  const names = (ids) => (ids.length ? ids.map(repLabel).join(" + ") : "nobody");
  const changed = p.changed === true || Boolean(move);
  return `<div class="change ${changed ? "moved" : ""}">${changed ? "Moves" : "Unchanged"}: ` +
    `<span class="from">${escapeHtml(names(from))}</span> → <span class="to">${escapeHtml(names(to))}</span></div>`;
}

function popupTable(rows) {
  return `<table>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("")}</table>`;
}

function unitHtml(p) {
  const contested = p.contested === true;
  const owners = contested ? ownersOf(p.code) : [];
  let owner;
  if (p.uncovered === true) owner = "<b>uncovered</b> (no territory)";
  else if (contested) owner = `<b>contested</b>: ${escapeHtml((owners.length ? owners : [p.owner]).map(repLabel).join(", "))}`;
  else owner = escapeHtml(p.owner_name ? `${p.owner_name} (${p.owner})` : repLabel(p.owner));
  const whiteSpace = state.diagnostics?.white_space.find((u) => u.code === p.code);
  const rows = [
    ["Owner", `<span class="owner">${owner}</span>`],
    ["Workload", fmt(p.workload, 1)],
    ["Accounts", fmt(p.accounts)],
    ["Population", p.population ? fmt(p.population) : "–"],
  ];
  if (whiteSpace) rows.push(["White space", `potential ${fmt(whiteSpace.potential)}, no deals`]);
  return `<div class="popup" data-code="${escapeHtml(p.code)}" data-owner="${escapeHtml(p.owner || "")}">` +
    `<h3>${escapeHtml(p.name)} <small>${escapeHtml(p.code)}</small></h3>` +
    (state.compare ? changeHtml(p) : "") +
    `${popupTable(rows)}</div>`;
}

function onUnitClick(event) {
  const feature = event.features && event.features[0];
  if (!feature) return;
  const props = feature.properties;
  closePopup();
  state.selected = props.code;
  map.setFilter("selected", ["==", ["get", "code"], props.code]);
  popup = new maplibregl.Popup({ maxWidth: "320px" })
    .setLngLat(event.lngLat)
    .setHTML(unitHtml(props))
    .addTo(map);
  popup.on("close", () => {
    if (state.selected === props.code) closePopup();
  });
}

function onRepClick(event) {
  const feature = event.features && event.features[0];
  if (!feature) return;
  const { rep, name } = feature.properties;
  const territory = state.diagnostics?.territories.find((t) => t.rep === rep);
  const rows = territory
    ? [["Territory", escapeHtml(territory.territory)], ["Units", fmt(territory.units)],
      ["Workload", `${fmt(territory.loads.workload, 1)} (${signed(territory.deviation_pct.workload, 1, "%")})`],
      ["Accounts", fmt(territory.loads.accounts)]]
    : [["Territory", "none in this plan"]];
  closePopup();
  popup = new maplibregl.Popup({ maxWidth: "280px" })
    .setLngLat(feature.geometry.coordinates)
    .setHTML(`<div class="popup"><h3>${escapeHtml(name)} <small>${escapeHtml(rep)} · home</small></h3>` +
      `${popupTable(rows)}</div>`)
    .addTo(map);
}

// ---------------------------------------------------------------- optimization

// The shown plan is the starting point; with no plan at all, plan from scratch for the active reps.
function optimizationRequest() {
  const common = { tolerance: { workload: tolerancePct() / 100 }, time_limit_s: Number($("opt-time-limit").value) };
  if (!state.plan) {
    const reps = [...state.reps.values()].filter((rep) => rep.active).map((rep) => rep.external_id);
    return { ...common, base_plan: null, level: state.level, reps };
  }
  return { ...common, base_plan: state.plan.id, max_moved_units_pct: Number($("opt-max-moved").value) };
}

function renderJob(job) {
  $("opt-status").hidden = false;
  $("opt-bar").style.width = `${Math.round((job.progress || 0) * 100)}%`;
  $("opt-bar").className = job.status;
  const stage = job.stage === "solving" && job.solver_stage ? `solving: ${job.solver_stage}` : job.stage;
  let text = `Job #${job.id}: ${job.status} · ${stage} · ${Math.round((job.progress || 0) * 100)} %`;
  const solution = job.report && job.report.solution;
  if (job.status === "succeeded" && solution) {
    const facts = [];
    if (solution.max_deviation?.workload !== undefined) facts.push(`max deviation ${fmt(solution.max_deviation.workload * 100, 1)} %`);
    if (solution.moved_units !== undefined) facts.push(`${fmt(solution.moved_units * 100, 1)} % of units moved`);
    if (solution.gap !== undefined) facts.push(`gap ${fmt(solution.gap * 100, 1)} %`);
    text += ` · draft plan #${job.result_plan_id}${facts.length ? ` (${facts.join(", ")})` : ""}`;
  }
  if (job.status === "failed" || job.status === "cancelled") text += `: ${jobReason(job)}`;
  $("opt-text").textContent = text;
  const notes = jobNotes(job);
  $("opt-notes").hidden = notes.length === 0;
  $("opt-notes").innerHTML = notes.map((note) => `<li>${escapeHtml(note)}</li>`).join("");
  const done = job.status === "succeeded" && Boolean(job.result_plan_id);
  $("opt-open").hidden = !done;
  $("opt-compare").hidden = !(done && job.base_plan_id);
}

// The pre-check's warnings (shown from submission on), then the solver's notes, each sentence once.
function jobNotes(job) {
  const report = job.report || {};
  const warnings = (report.precheck && report.precheck.warnings) || [];
  const notes = (report.solution && report.solution.notes) || [];
  return [...new Set([...warnings, ...notes])];
}

function jobReason(job) {
  const error = job.error || {};
  const reasons = (error.reasons || []).join("; ");
  const what = error.detail || error.message || error.type || "no details";
  return `${what}${reasons ? ` (${reasons})` : ""}`;
}

function jobError(job) {
  return `Optimization #${job.id} ${job.status}: ${jobReason(job)}`;
}

async function pollJob(id) {
  const job = await api(`/optimizations/${id}`);
  state.job = job;
  renderJob(job);
  if (job.status === "queued" || job.status === "running") {
    setTimeout(guarded(pollJob), POLL_MS, id);
    return;
  }
  $("opt-start").disabled = false;
  if (job.status === "succeeded") {
    await loadPlans();
    renderPlanOptions();
  } else {
    showError(jobError(job));
  }
}

async function startOptimization(event) {
  event.preventDefault();
  clearError();
  $("opt-start").disabled = true;
  try {
    const job = await api("/optimizations", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(optimizationRequest()),
    });
    state.job = job;
    renderJob(job);
    await pollJob(job.id);
  } catch (error) {
    $("opt-start").disabled = false;
    throw error;
  }
}

async function openDraft(compareWithBase = false) {
  const id = state.job && state.job.result_plan_id;
  if (!id) return;
  if (!state.plans.some((plan) => plan.id === id)) await loadPlans();
  if (compareWithBase) await selectPlan(state.job.base_plan_id, id);
  else await selectPlan(id);
}

// ---------------------------------------------------------------- wiring

function setVisible(layers, visible) {
  for (const id of layers) map.setLayoutProperty(id, "visibility", visible ? "visible" : "none");
}

function wireControls() {
  $("error-close").addEventListener("click", clearError);
  $("plan-select").addEventListener("change", guarded((e) => selectPlan(e.target.value)));
  $("compare-select").addEventListener("change", guarded((e) => selectPlan(state.plan?.id, e.target.value || null)));
  $("measure-select").addEventListener("change", (e) => {
    state.measure = e.target.value;
    renderBalance();
  });
  $("opt-tolerance").addEventListener("input", renderBalance);
  $("optimize-form").addEventListener("submit", guarded(startOptimization));
  $("opt-open").addEventListener("click", guarded(() => openDraft(false)));
  $("opt-compare").addEventListener("click", guarded(() => openDraft(true)));
  for (const [id, layers] of Object.entries(TOGGLES)) {
    $(id).addEventListener("change", (e) => setVisible(layers, e.target.checked));
  }
  $("balance").addEventListener("mouseover", (e) => highlightRep(e.target.closest("tr")?.dataset.rep));
  $("balance").addEventListener("mouseleave", () => highlightRep(null));
}

function highlightRep(rep) {
  if (!map.getLayer("territory-fill")) return;
  map.setPaintProperty("territory-fill", "fill-opacity",
    rep ? ["case", ["==", ["get", "owner"], rep], 0.95, 0.25] : fillOpacity());
}

function wireMap() {
  map.on("click", "territory-fill", onUnitClick);
  map.on("click", "rep-homes", onRepClick);
  for (const layer of ["territory-fill", "rep-homes"]) {
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
  }
  map.on("sourcedata", (e) => {
    if (e.sourceId === "tiles" && e.isSourceLoaded) collectRepColors();
  });
  map.on("error", (e) => showError(e.error || e));
}

function styleLoaded() {
  return new Promise((resolve) => (map.isStyleLoaded() ? resolve() : map.once("load", resolve)));
}

async function init() {
  wireControls();
  wireMap();
  const [, plans] = await Promise.all([loadReps(), loadPlans(), styleLoaded()]);
  const wanted = hashSelection();
  const plan = plans.find((p) => p.id === wanted.plan) || plans.find((p) => p.status === "active") || plans[0];
  state.plan = plan || null;
  state.level = plan ? plan.level : await defaultLevel();
  addLayers();
  const bounds = await unitBounds(state.level);
  if (bounds) map.fitBounds(bounds, { padding: 30, duration: 0 });
  await selectPlan(plan ? plan.id : null, plan ? wanted.compare : null);
  state.ready = true;
}

guarded(init)();
