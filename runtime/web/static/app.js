// Formloom's own behaviour for the generated pages. No inline handlers anywhere: everything is
// bound here by data attributes, so the pages run under a strict Content-Security-Policy.
"use strict";

// --- Alpine.js (CSP build): components are registered, never written as inline expressions.
document.addEventListener("alpine:init", () => {
  window.Alpine.data("menu", () => ({
    open: false,
    toggle() { this.open = !this.open; },
    get expanded() { return this.open ? "true" : "false"; },
    get navClass() { return this.open ? "site-nav open" : "site-nav"; },
  }));
});

// --- Live preview: the server answers formulas, visibility and required fields as an event.
function applyRow(form, row) {
  for (const [name, text] of Object.entries(row.values)) {
    const out = form.querySelector(`[data-live="${CSS.escape(name)}"]`);
    if (out) out.textContent = text;
  }
  for (const [name, shown] of Object.entries(row.visible)) {
    const box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (box) box.hidden = !shown;
  }
  for (const name of row.required) {
    const box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (box) box.classList.add("is-required");
  }
  for (const name of row.optional) {
    const box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (box) box.classList.remove("is-required");
  }
}

// A field filled by its `fetch`: its input and its `._fetched` marker take the value, so the
// field keeps following until the user types over it (see runtime/web/form_data.py). An input
// that no longer holds its marker's value was typed over meanwhile (the answer is late): it stays.
function inputValue(inputs, kind) {
  const checked = inputs.filter((input) => input.type === "checkbox" && input.checked).map((input) => input.value);
  if (kind === "boolean") return checked.includes("true") ? "true" : "";
  if (kind === "multi_select") return checked.filter(Boolean).sort().join(",");
  return inputs.length ? inputs[0].value.trim() : "";
}

function applyFetched(form, fetched) {
  for (const [name, item] of Object.entries(fetched || {})) {
    const marker = form.querySelector(`[name="${CSS.escape(name + "._fetched")}"]`);
    if (!marker) continue;
    const inputs = [...form.querySelectorAll(`[name="${CSS.escape(name)}"]`)];
    const shown = inputValue(inputs.filter((input) => input.type !== "hidden" || input.matches("[data-pick-value]")), item.kind);
    const held = item.kind === "boolean" && marker.value === "false" ? "" : marker.value.trim();
    if (shown !== held) continue;
    marker.value = item.value;
    const picked = inputs.find((input) => input.matches("[data-pick-value]"));
    if (picked) {
      const picker = pickerOf(picked);
      picked.value = item.value;
      const label = picker.querySelector("[data-pick-label]");
      if (label) label.value = item.display;
      picker.querySelector("[data-pick-search]").value = item.display;
    } else if (item.kind === "boolean") {
      for (const input of inputs) if (input.type === "checkbox") input.checked = item.value === "true";
    } else if (item.kind === "multi_select") {
      const chosen = item.value ? item.value.split(",") : [];
      for (const input of inputs) if (input.type === "checkbox") input.checked = chosen.includes(input.value);
    } else {
      for (const input of inputs) input.value = item.value;
    }
  }
}

document.addEventListener("formloom:live", (event) => {
  const form = document.getElementById("record-form");
  if (!form) return;
  applyRow(form, event.detail.record);
  applyFetched(form, event.detail.record.fetched);
  for (const row of event.detail.rows) {
    applyRow(form, row);
    applyFetched(form, row.fetched);
  }
});

// Each preview request is numbered when it leaves and noted when its answer has been applied
// (`data-live-sent`, `data-live-answered` on the form), so a test, or a script, can wait for
// the preview of what was typed instead of sleeping. htmx sends one request at a time and
// queues the last trigger, so answers come back in order.
let livePreviews = 0;
document.addEventListener("htmx:beforeRequest", (event) => {
  if (!event.target.matches("[data-live-preview]")) return;
  livePreviews += 1;
  event.detail.requestConfig.livePreview = livePreviews;
  const form = event.target.closest("form");
  if (form) form.dataset.liveSent = String(livePreviews);
});
document.addEventListener("htmx:afterRequest", (event) => {
  const number = event.detail.requestConfig && event.detail.requestConfig.livePreview;
  const form = number && event.target.closest("form");
  if (form) form.dataset.liveAnswered = String(number);
});

// --- Link and user pickers: type to search, pick with the mouse or the keyboard.
function pickerOf(element) { return element.closest("[data-picker]"); }

function choose(button) {
  const picker = pickerOf(button);
  picker.querySelector("[data-pick-value]").value = button.dataset.pickId;
  const label = picker.querySelector("[data-pick-label]");
  if (label) label.value = button.dataset.pickDisplay;
  const search = picker.querySelector("[data-pick-search]");
  search.value = button.dataset.pickDisplay;
  closePicks(picker);
  search.focus();
  picker.dispatchEvent(new Event("pick", { bubbles: true }));
}

function closePicks(picker) {
  const list = picker.querySelector(".picks");
  list.replaceChildren();
  picker.querySelector("[data-pick-search]").setAttribute("aria-expanded", "false");
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-pick-id]");
  if (button) { choose(button); return; }
  for (const picker of document.querySelectorAll("[data-picker]")) {
    if (!picker.contains(event.target)) closePicks(picker);
  }
});

document.addEventListener("input", (event) => {
  if (!event.target.matches("[data-pick-search]")) return;
  const picker = pickerOf(event.target);
  picker.querySelector("[data-pick-value]").value = "";
  const label = picker.querySelector("[data-pick-label]");
  if (label) label.value = "";
});

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target.matches("[data-pick-search]") && event.key === "ArrowDown") {
    const first = pickerOf(target).querySelector("[data-pick-id]");
    if (first) { event.preventDefault(); first.focus(); }
  } else if (target.matches("[data-pick-id]") && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    event.preventDefault();
    const item = target.closest("li");
    const next = event.key === "ArrowDown" ? item.nextElementSibling : item.previousElementSibling;
    const button = next && next.querySelector("[data-pick-id]");
    if (button) button.focus(); else pickerOf(target).querySelector("[data-pick-search]").focus();
  } else if (event.key === "Escape" && target.closest("[data-picker]")) {
    closePicks(pickerOf(target));
  }
});

document.addEventListener("htmx:afterSwap", (event) => {
  const list = event.detail.target;
  if (list.classList && list.classList.contains("picks")) {
    const search = pickerOf(list).querySelector("[data-pick-search]");
    search.setAttribute("aria-expanded", list.querySelector("[data-pick-id]") ? "true" : "false");
  }
});

// --- Child tables: add, remove and reorder rows; names follow the rows' order.
function renumber(table) {
  const key = table.dataset.table;
  const pattern = new RegExp(`${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\[(\\d+|__row__)\\]`, "g");
  table.querySelectorAll("[data-rows] > tr").forEach((row, index) => {
    for (const element of row.querySelectorAll("*")) {
      for (const attribute of ["name", "id", "for", "data-field", "aria-describedby", "aria-controls", "data-live"]) {
        const value = element.getAttribute(attribute);
        if (value && value.includes(`${key}[`)) element.setAttribute(attribute, value.replace(pattern, `${key}[${index}]`));
      }
    }
    if (row.dataset.field) row.dataset.field = row.dataset.field.replace(pattern, `${key}[${index}]`);
  });
  table.dispatchEvent(new Event("rows", { bubbles: true }));
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-add-row], [data-row-up], [data-row-down], [data-row-remove]");
  if (!button) return;
  const table = button.closest("[data-table]");
  const body = table.querySelector("[data-rows]");
  if (button.matches("[data-add-row]")) {
    const row = table.querySelector("[data-row-template]").content.firstElementChild.cloneNode(true);
    body.appendChild(row);
    renumber(table);
    if (window.htmx) window.htmx.process(row);
    const first = row.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
    return;
  }
  const row = button.closest("tr");
  if (button.matches("[data-row-up]") && row.previousElementSibling) {
    body.insertBefore(row, row.previousElementSibling);
    button.focus();
  } else if (button.matches("[data-row-down]") && row.nextElementSibling) {
    body.insertBefore(row.nextElementSibling, row);
    button.focus();
  } else if (button.matches("[data-row-remove]")) {
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    const focus = next ? next.querySelector("[data-row-remove]") : table.querySelector("[data-add-row]");
    focus.focus();
  }
  renumber(table);
});

// --- The list's filter builder writes the expression language into the `where` box.
const NUMBER_KINDS = ["integer", "decimal", "money", "percent"];

function literal(kind, raw) {
  const text = raw.trim();
  if (NUMBER_KINDS.includes(kind)) {
    const number = text.replace(/[,，\s%]/g, "");
    return kind === "percent" && number !== "" ? String(Number(number) / 100) : number || "0";
  }
  if (kind === "boolean") return ["true", "yes", "是", "1"].includes(text.toLowerCase()) ? "true" : "false";
  if (kind === "date") return `#${text}#`;
  if (kind === "datetime") return `#${text.length === 10 ? text + "T00:00:00" : text}#`;
  if (kind === "user" && ["me", "我", "current_user"].includes(text.toLowerCase())) return "CURRENT_USER()";
  if (["link", "user", "department"].includes(kind)) return text.replace(/[^0-9]/g, "") || "0";
  return `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function condition(row) {
  const select = row.querySelector("[data-cond-field]");
  const field = select.value;
  const kind = select.selectedOptions[0].dataset.kind;
  const op = row.querySelector("[data-cond-op]").value;
  const value = row.querySelector("[data-cond-value]").value;
  if (op === "empty") return `${field} == null`;
  if (op === "filled") return `${field} != null`;
  if (op === "contains") {
    return kind === "multi_select" ? `CONTAINS(${field}, ${literal("text", value)})`
      : `CONTAINS(LOWER(${field}), ${literal("text", value.toLowerCase())})`;
  }
  return `${field} ${op} ${literal(kind, value)}`;
}

function compose(builder) {
  const rows = [...builder.querySelectorAll("[data-conditions] .condition")];
  const join = builder.querySelector("[data-join]").value;
  const where = builder.closest("form").querySelector("[name=where]");
  where.value = rows.map(condition).join(` ${join} `);
}

document.addEventListener("click", (event) => {
  const add = event.target.closest("[data-add-condition]");
  const remove = event.target.closest("[data-cond-remove]");
  if (add) {
    const builder = add.closest("[data-filter-builder]");
    const row = builder.querySelector("[data-condition-template]").content.firstElementChild.cloneNode(true);
    builder.querySelector("[data-conditions]").appendChild(row);
    row.querySelector("select").focus();
    compose(builder);
  } else if (remove) {
    const builder = remove.closest("[data-filter-builder]");
    remove.closest(".condition").remove();
    compose(builder);
  }
});

for (const type of ["input", "change"]) {
  document.addEventListener(type, (event) => {
    const builder = event.target.closest("[data-filter-builder]");
    if (builder) compose(builder);
  });
}

// --- Dashboards: each widget loads its data from the API and draws it; clicks drill down.
function drillPage(url) { return url ? url.replace(/^\/api\/v1\//, "/app/") : null; }

function cellText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number" && !Number.isInteger(value)) return value.toLocaleString(undefined, { maximumFractionDigits: 4 });
  return typeof value === "number" ? value.toLocaleString() : String(value);
}

function dataTable(section, data) {
  const table = document.createElement("table");
  table.className = "records";
  const head = table.createTHead().insertRow();
  for (const column of data.columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = column.label;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of data.rows) {
    const tr = body.insertRow();
    const cells = [...row.dimensions.map((d) => d.display ?? d.value), ...row.values];
    cells.forEach((value, index) => {
      const td = tr.insertCell();
      td.dataset.label = data.columns[index] ? data.columns[index].label : "";
      const drill = drillPage(row.drill);
      if (index === 0 && drill) {
        const link = document.createElement("a");
        link.href = drill;
        link.textContent = cellText(value);
        link.title = section.dataset.drillLabel;
        td.appendChild(link);
      } else {
        td.textContent = cellText(value);
      }
    });
  }
  return table;
}

function chartOption(chart, data) {
  const names = data.rows.map((r) => r.dimensions.map((d) => d.display ?? d.value).join(" · "));
  const measures = data.columns.filter((c) => c.kind === "measure");
  const tooltip = { trigger: chart === "pie" || chart === "funnel" ? "item" : "axis", renderMode: "richText" };
  if (chart === "pie" || chart === "funnel") {
    return {
      tooltip,
      series: [{
        type: chart,
        name: measures[0] ? measures[0].label : "",
        sort: "none",
        label: { show: true, formatter: "{b}: {c}" },
        data: data.rows.map((r, i) => ({ name: names[i], value: r.values[0] })),
      }],
    };
  }
  return {
    tooltip,
    legend: { type: "scroll" },
    grid: { left: 48, right: 16, bottom: 48, containLabel: true },
    xAxis: { type: "category", data: names, axisLabel: { rotate: names.length > 6 ? 30 : 0 } },
    yAxis: { type: "value" },
    series: measures.map((m, mi) => ({
      type: chart === "line" ? "line" : "bar",
      name: m.label,
      data: data.rows.map((r) => r.values[mi]),
    })),
  };
}

async function loadWidget(section) {
  const box = section.querySelector(".widget-data");
  try {
    const response = await fetch(section.dataset.widget, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.problems || (data.errors || []).map((e) => e.message)).join("; ") || String(response.status));
    box.replaceChildren();
    const chart = section.dataset.chart;
    if (chart === "number") {
      const figure = document.createElement("p");
      figure.className = "figure";
      figure.textContent = data.rows.length ? cellText(data.rows[0].values[0]) : "—";
      box.appendChild(figure);
      return;
    }
    box.appendChild(dataTable(section, data));
    const holder = section.querySelector(".chart");
    if (holder) holder.hidden = chart === "table";
    if (holder && window.echarts && data.rows.length) {
      const drawn = window.echarts.getInstanceByDom(holder) || window.echarts.init(holder, null, { renderer: "canvas" });
      drawn.setOption(chartOption(chart, data));
      drawn.on("click", (params) => {
        const row = data.rows[params.dataIndex];
        const target = row && drillPage(row.drill);
        if (target) window.location.assign(target);
      });
      new ResizeObserver(() => drawn.resize()).observe(holder);
    }
  } catch (error) {
    const message = document.createElement("p");
    message.className = "error";
    message.textContent = `${section.dataset.errorLabel} (${error.message})`;
    box.replaceChildren(message);
  }
}

window.formloomLoadWidget = loadWidget;
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-widget]").forEach(loadWidget);
});

// --- Tabs (layout sections with a `tab`): click or arrow keys; a tab holding an error opens first.
function showTab(tabs, button) {
  for (const other of tabs.querySelectorAll("[role=tab]")) {
    const chosen = other === button;
    other.setAttribute("aria-selected", chosen ? "true" : "false");
    other.tabIndex = chosen ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !chosen;
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-tabs] [role=tab]");
  if (button) showTab(button.closest("[data-tabs]"), button);
});

document.addEventListener("keydown", (event) => {
  const button = event.target.closest("[data-tabs] [role=tab]");
  if (!button || !["ArrowLeft", "ArrowRight"].includes(event.key)) return;
  const all = [...button.parentElement.querySelectorAll("[role=tab]")];
  const next = all[(all.indexOf(button) + (event.key === "ArrowRight" ? 1 : all.length - 1)) % all.length];
  showTab(button.closest("[data-tabs]"), next);
  next.focus();
});

document.addEventListener("DOMContentLoaded", () => {
  for (const tabs of document.querySelectorAll("[data-tabs]")) {
    const failing = tabs.querySelector("[role=tabpanel] .error");
    if (failing) showTab(tabs, document.getElementById(failing.closest("[role=tabpanel]").getAttribute("aria-labelledby")));
  }
});
