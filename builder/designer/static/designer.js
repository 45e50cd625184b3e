// The form designer: the form as plain data (what its YAML file says), drawn as sections of
// field cards. Fields are dragged from the palette and between sections with SortableJS, or
// added and moved with buttons from the keyboard. Every change can be undone.
"use strict";

(() => {
  const root = document.getElementById("form-designer");
  if (!root) return;
  const app = root.dataset.app;
  const formKey = root.dataset.form;
  const language = root.dataset.language === "en" ? "en" : "zh";
  const base = `/designer/${app}`;
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
  const strings = {};
  for (const item of root.querySelector("[data-strings]").content.querySelectorAll("data")) {
    strings[item.value] = item.textContent;
  }
  const t = (key) => strings[key] || key;
  const canvas = root.querySelector("[data-canvas]");
  const panel = root.querySelector("[data-properties]");
  const preview = root.querySelector("[data-preview]");
  const status = root.querySelector("[data-status]");
  const problems = root.querySelector("[data-problems]");
  const NUMERIC = ["integer", "decimal", "money", "percent", "date", "datetime"];
  const TEXTUAL = ["text", "email", "phone", "url"];

  let form = null;
  let revision = "";
  let published = new Set();
  let forms = [];
  let selected = null; // {kind: "field", key} or {kind: "section", index}
  const undo = [];
  const redo = [];
  const typedKeys = new Set(); // new fields whose key the admin typed: labels no longer change it

  // --- talking to the server -----------------------------------------------------------------
  async function send(path, body, accept = "application/json") {
    const response = await fetch(`${base}${path}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: accept },
      body: JSON.stringify(body),
    });
    return response;
  }

  async function newKey(label, own = null) {
    const taken = form.fields.map((f) => f.key).filter((k) => k !== own);
    const answer = await (await send("/key", { label, taken })).json();
    return answer.key;
  }

  // --- the model -----------------------------------------------------------------------------
  const label = (value, fallback) => (value && (value[language] || value.en || value.zh)) || fallback;
  const field = (key) => form.fields.find((f) => f.key === key);
  const hasLayout = () => Array.isArray(form.layout) && form.layout.length > 0;
  // Related lists (`{related: form.link}`) sit in the layout too; they are kept as written.
  const isSection = (item) => !("related" in item);
  const sectionsOf = () => (hasLayout() ? form.layout.filter(isSection) : []);
  const lastSection = () => (hasLayout() ? form.layout.map(isSection).lastIndexOf(true) : -1);
  const placed = () => new Set(sectionsOf().flatMap((s) => s.fields));

  function snapshot() {
    undo.push(JSON.stringify(form));
    if (undo.length > 200) undo.shift();
    redo.length = 0;
  }

  function commit(change) {
    snapshot();
    change();
    draw();
  }

  function restore(from, to) {
    if (!from.length) return;
    to.push(JSON.stringify(form));
    form = JSON.parse(from.pop());
    if (selected && selected.kind === "field" && !field(selected.key)) selected = null;
    draw();
    drawPanel();
  }

  function payload() {
    const copy = JSON.parse(JSON.stringify(form));
    if (Array.isArray(copy.layout)) {
      copy.layout = copy.layout.filter((s) => !isSection(s) || s.fields.length);
      if (!copy.layout.length) delete copy.layout;
    }
    return copy;
  }

  function starter(type, key, name) {
    const item = { key, type, label: name };
    if (type === "select" || type === "multi_select") {
      item.options = [{ key: "option_1", label: { zh: "选项 1", en: "Option 1" } }];
    } else if (type === "link") {
      item.to = forms.find((f) => f !== formKey) || formKey;
    } else if (type === "table") {
      item.form = "";
    } else if (type === "auto_number") {
      item.pattern = "NO-{#####}";
    }
    return item;
  }

  async function addField(type, listKey, index) {
    const name = { zh: t("d.new_field"), en: "New field" };
    const key = await newKey(`${name.en} ${type}`);
    commit(() => {
      const item = starter(type, key, name);
      const keys = listKey === "fields" || listKey === "none" ? null : form.layout[Number(listKey)].fields;
      const neighbour = keys ? keys[index - 1] : null;
      const at = neighbour ? form.fields.findIndex((f) => f.key === neighbour) + 1 : form.fields.length;
      if (listKey === "fields") form.fields.splice(Math.min(index, form.fields.length), 0, item);
      else form.fields.splice(at, 0, item);
      if (keys) keys.splice(index, 0, key);
      selected = { kind: "field", key };
    });
    drawPanel();
    focusCard(key);
  }

  function readLists() {
    // The canvas after a drag: the order of every list, as the model's layout or field order.
    for (const list of canvas.querySelectorAll("[data-list]")) {
      const keys = [...list.querySelectorAll("[data-key]")].map((c) => c.dataset.key);
      if (list.dataset.list === "fields") {
        form.fields = keys.map(field).filter(Boolean);
      } else if (list.dataset.list !== "none") {
        form.layout[Number(list.dataset.list)].fields = keys;
      }
    }
  }

  function renameKey(item, key) {
    const old = item.key;
    if (!key || key === old || field(key)) return false;
    if (published.has(old) && !item.renamed_from) item.renamed_from = old;
    if (item.renamed_from === key) delete item.renamed_from;
    item.key = key;
    for (const s of sectionsOf()) s.fields = s.fields.map((k) => (k === old ? key : k));
    if (form.title_field === old) form.title_field = key;
    if (selected && selected.key === old) selected.key = key;
    return true;
  }

  // --- drawing the canvas --------------------------------------------------------------------
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function card(key) {
    const item = field(key);
    if (!item) return null;
    const marks = [item.required ? "*" : "", item.formula ? "ƒ" : "", item.visible_when ? "◐" : ""].join(" ").trim();
    const chosen = selected && selected.kind === "field" && selected.key === key;
    return el(
      "li",
      { class: chosen ? "d-card chosen" : "d-card", "data-key": key },
      el("button", { type: "button", class: "d-select", "data-select": key, "aria-pressed": chosen ? "true" : "false" },
        el("strong", { text: label(item.label, key) }), " ",
        el("span", { class: "muted", text: `${key} · ${t(`type.${item.type}`)} ${marks}` })),
      el("span", { class: "d-moves" },
        el("button", { type: "button", class: "icon", "data-move": "-1", "aria-label": `${t("d.move_up")} ${key}`, text: "↑" }),
        el("button", { type: "button", class: "icon", "data-move": "1", "aria-label": `${t("d.move_down")} ${key}`, text: "↓" })),
    );
  }

  function list(name, keys, columns) {
    const node = el("ul", { class: `d-list cols-${columns || 1}`, "data-list": name });
    for (const key of keys) node.append(card(key) || "");
    return node;
  }

  function draw() {
    canvas.replaceChildren();
    if (hasLayout()) {
      form.layout.forEach((section, index) => {
        if (!isSection(section)) {
          canvas.append(el("section", { class: "d-section d-related", "data-related": section.related },
            el("div", { class: "d-section-head" }, el("strong", { text: label(section.label, section.related) }), " ",
              el("span", { class: "muted", text: `${t("d.related")}: ${section.related}` })),
            el("p", { class: "muted", text: t("d.related_hint") })));
          return;
        }
        const head = el("div", { class: "d-section-head" },
          el("button", { type: "button", class: "d-select", "data-section": String(index) },
            el("strong", { text: label(section.section, t("d.section")) }),
            " ", el("span", { class: "muted", text: `${section.columns || 1} ${t("d.columns")}${section.tab ? ` · ${t("d.tab")}: ${label(section.tab, "")}` : ""}` })));
        canvas.append(el("section", { class: "d-section", "aria-label": label(section.section, "") }, head, list(String(index), section.fields, section.columns)));
      });
      const rest = form.fields.map((f) => f.key).filter((k) => !placed().has(k));
      canvas.append(el("section", { class: "d-section unplaced" }, el("div", { class: "d-section-head", text: t("d.not_placed") }), list("none", rest, 1)));
    } else {
      canvas.append(el("section", { class: "d-section" }, list("fields", form.fields.map((f) => f.key), 2)));
    }
    for (const node of canvas.querySelectorAll("[data-list]")) {
      window.Sortable.create(node, {
        group: { name: "fields", pull: true, put: true },
        animation: 120,
        forceFallback: true, // mouse and touch events: works the same with a pen, a finger or a test
        onAdd: (event) => {
          const type = event.item.dataset.type;
          if (!type) return;
          event.item.remove();
          addField(type, node.dataset.list, event.newIndex);
        },
        onEnd: (event) => {
          if (event.item.dataset.type) return;
          snapshot();
          readLists();
          draw();
        },
      });
    }
    root.querySelector("[data-undo]").disabled = !undo.length;
    root.querySelector("[data-redo]").disabled = !redo.length;
    schedulePreview();
  }

  function focusCard(key) {
    const button = canvas.querySelector(`[data-key="${CSS.escape(key)}"] [data-select]`);
    if (button) button.focus();
  }

  // --- the property panel ------------------------------------------------------------------------
  function row(text, input, hint) {
    const id = `p-${Math.random().toString(36).slice(2, 9)}`;
    input.id = id;
    return el("div", { class: "p-row" }, el("label", { for: id, text }), input, hint || "");
  }

  function textInput(value, onChange, attrs = {}) {
    const input = el("input", { value: value ?? "", ...attrs });
    input.addEventListener("change", () => onChange(input.value));
    return input;
  }

  function labelled(target, name, title) {
    const value = target[name] || {};
    return ["zh", "en"].map((lang) =>
      row(`${title} (${lang})`, textInput(value[lang], (text) => commit(() => {
        const next = { ...(target[name] || {}) };
        if (text.trim()) next[lang] = text.trim(); else delete next[lang];
        if (Object.keys(next).length) target[name] = next; else delete target[name];
      }), { "data-prop": `${name}_${lang}` })));
  }

  function optional(target, name, text, attrs = {}) {
    return row(text, textInput(target[name], (value) => commit(() => {
      const typed = value.trim();
      if (typed === "") delete target[name];
      else target[name] = attrs.inputmode === "numeric" && /^-?\d+(\.\d+)?$/.test(typed) ? Number(typed) : typed;
    }), { "data-prop": name, ...attrs }));
  }

  function flag(target, name, text) {
    const box = el("input", { type: "checkbox", "data-prop": name, checked: Boolean(target[name]) });
    box.addEventListener("change", () => commit(() => { if (box.checked) target[name] = true; else delete target[name]; }));
    const id = `p-${name}`;
    box.id = id;
    return el("div", { class: "p-row check" }, box, el("label", { for: id, text }));
  }

  function expression(item, name, text) {
    const area = el("textarea", { rows: "2", class: "code", spellcheck: "false", "data-prop": name });
    area.value = item[name] || "";
    const verdict = el("p", { class: "help", "aria-live": "polite", "data-verdict": name });
    let timer = null;
    const check = async () => {
      if (!area.value.trim()) { verdict.textContent = ""; return; }
      const kind = name === "default" ? "default" : name;
      const probe = JSON.parse(JSON.stringify(payload()));
      const answer = await (await send("/check", { form: probe, field: item.key, kind, text: area.value })).json();
      verdict.className = answer.ok ? "help ok" : "error";
      verdict.textContent = answer.ok ? t("d.expression_ok") : (answer.column ? `${answer.column}: ${answer.message}` : answer.message);
    };
    area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 300); });
    area.addEventListener("change", () => commit(() => { if (area.value.trim()) item[name] = area.value; else delete item[name]; }));
    if (area.value) setTimeout(check, 0);
    return row(text, area, verdict);
  }

  function options(item) {
    const box = el("fieldset", { class: "p-options" }, el("legend", { text: t("d.options") }));
    const current = (index) => {
      const option = item.options[index];
      return typeof option === "string" ? { key: option } : { ...option };
    };
    (item.options || []).forEach((option, index) => {
      const value = current(index);
      const line = el("div", { class: "p-option" });
      line.append(textInput(value.key, (text) => commit(() => { item.options[index] = { ...current(index), key: text.trim() }; }), { "aria-label": `${t("d.option_key")} ${index + 1}`, "data-option-key": String(index) }));
      for (const lang of ["zh", "en"]) {
        line.append(textInput((value.label || {})[lang], (text) => commit(() => {
          const next = current(index);
          next.label = { ...(next.label || {}) };
          if (text.trim()) next.label[lang] = text.trim(); else delete next.label[lang];
          if (!Object.keys(next.label).length) delete next.label;
          item.options[index] = next;
        }), { "aria-label": `${t("d.label_" + lang)} ${index + 1}`, "data-option-label": `${index}_${lang}` }));
      }
      const remove = el("button", { type: "button", class: "icon danger", "aria-label": `${t("d.remove")} ${value.key}`, text: "✕" });
      remove.addEventListener("click", () => {
        commit(() => item.options.splice(index, 1));
        drawPanel();
      });
      line.append(remove);
      box.append(line);
    });
    const add = el("button", { type: "button", class: "button small", "data-add-option": "", text: `+ ${t("d.add_option")}` });
    add.addEventListener("click", () => {
      commit(() => {
        item.options = item.options || [];
        item.options.push({ key: `option_${item.options.length + 1}` });
      });
      drawPanel();
      const keys = panel.querySelectorAll("[data-option-key]");
      if (keys.length) keys[keys.length - 1].focus();
    });
    box.append(add);
    return box;
  }

  function choice(target, name, text, values, named = (value) => value || "—") {
    const select = el("select", { "data-prop": name });
    for (const value of values) select.append(el("option", { value, text: named(value), selected: target[name] === value }));
    select.addEventListener("change", () => commit(() => { if (select.value) target[name] = select.value; else delete target[name]; }));
    return row(text, select);
  }

  function fieldPanel(item) {
    const parts = [el("h3", { text: t("d.field_props") })];
    parts.push(...labelled(item, "label", t("d.label")));
    const keyInput = textInput(item.key, (text) => {
      commit(() => { if (renameKey(item, text.trim())) typedKeys.add(item.key); });
      drawPanel();
    }, { "data-prop": "key", pattern: "[a-z][a-z0-9_]*" });
    const note = published.has(item.renamed_from || item.key) ? el("p", { class: "help", text: item.renamed_from ? `${t("d.renamed_note")} ${item.renamed_from}` : t("d.published_key") }) : null;
    parts.push(row(t("d.key"), keyInput, note));
    parts.push(choice(item, "type", t("d.type"), JSON.parse(root.dataset.types), (kind) => t(`type.${kind}`)));
    parts.push(flag(item, "required", t("d.required")), flag(item, "read_only", t("d.read_only")), flag(item, "index", t("d.index")));
    if ([...TEXTUAL, "integer", "decimal", "money", "date", "link"].includes(item.type)) parts.push(flag(item, "unique", t("d.unique")));
    parts.push(...labelled(item, "help", t("d.help")));
    if (item.type === "select" || item.type === "multi_select") parts.push(options(item));
    if (NUMERIC.includes(item.type)) parts.push(optional(item, "min", t("d.min")), optional(item, "max", t("d.max")));
    if (TEXTUAL.includes(item.type)) parts.push(optional(item, "pattern", t("d.pattern")), optional(item, "max_length", t("d.max_length"), { inputmode: "numeric" }));
    if (item.type === "money") parts.push(optional(item, "currency", t("d.currency")));
    if (item.type === "link") parts.push(choice(item, "to", t("d.link_to"), forms), choice(item, "on_delete", t("d.on_delete"), ["", "restrict", "set_null"]), expression(item, "filter", t("d.filter")));
    if (item.type === "table") parts.push(choice(item, "form", t("d.table_form"), ["", ...forms]));
    if (item.type === "auto_number") parts.push(optional(item, "pattern", t("d.pattern_auto")));
    if (!["table", "attachment", "auto_number"].includes(item.type)) parts.push(optional(item, "default", t("d.default")));
    if (item.type !== "table") parts.push(expression(item, "formula", t("d.formula")));
    if (!["table", "attachment", "auto_number"].includes(item.type)) parts.push(expression(item, "fetch", t("d.fetch")), choice(item, "fetch_mode", t("d.fetch_mode"), ["", "follow", "default"], (mode) => (mode ? t(`d.fetch_${mode}`) : "—")));
    parts.push(expression(item, "visible_when", t("d.visible_when")), expression(item, "required_when", t("d.required_when")));
    const remove = el("button", { type: "button", class: "button danger", "data-delete-field": "", text: t("d.delete_field") });
    remove.addEventListener("click", () => {
      commit(() => {
        form.fields = form.fields.filter((f) => f !== item);
        for (const s of sectionsOf()) s.fields = s.fields.filter((k) => k !== item.key);
        selected = null;
      });
      drawPanel();
    });
    parts.push(remove);
    return parts;
  }

  function sectionPanel(index) {
    const section = form.layout[index];
    const columns = el("select", { "data-prop": "columns" });
    for (const n of [1, 2, 3, 4]) columns.append(el("option", { value: String(n), text: String(n), selected: (section.columns || 1) === n }));
    columns.addEventListener("change", () => commit(() => { section.columns = Number(columns.value); }));
    const remove = el("button", { type: "button", class: "button danger", text: t("d.delete_section") });
    remove.addEventListener("click", () => {
      commit(() => { form.layout.splice(index, 1); if (!form.layout.length) delete form.layout; selected = null; });
      drawPanel();
    });
    return [el("h3", { text: t("d.section_props") }), ...labelled(section, "section", t("d.section_title")), row(t("d.columns"), columns), ...labelled(section, "tab", t("d.tab")), remove];
  }

  function drawPanel() {
    panel.replaceChildren();
    if (selected && selected.kind === "field" && field(selected.key)) panel.append(...fieldPanel(field(selected.key)));
    else if (selected && selected.kind === "section" && hasLayout() && form.layout[selected.index]) panel.append(...sectionPanel(selected.index));
    else panel.append(el("p", { class: "muted", text: t("d.select_hint") || "" }));
  }

  // --- preview and save ----------------------------------------------------------------------------
  let previewTimer = null;
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(async () => {
      const response = await send(`/forms/${formKey}/preview`, { form: payload() }, "text/html");
      preview.innerHTML = await response.text();
    }, 400);
  }

  async function save() {
    status.textContent = "…";
    const response = await send(`/forms/${formKey}`, { form: payload(), revision });
    const answer = await response.json();
    if (answer.revision) revision = answer.revision;
    problems.replaceChildren(...(answer.problems || []).map((p) => el("li", {}, el("code", { text: p }))));
    if (!response.ok) status.textContent = t("d.save_failed");
    else status.textContent = answer.problems.length ? `${t("d.saved_invalid")} (${answer.file})` : `${t("d.saved")} (${answer.file})`;
  }

  // --- events ------------------------------------------------------------------------------------------
  root.addEventListener("click", async (event) => {
    const target = event.target.closest("button");
    if (!target || !root.contains(target)) return;
    if (target.dataset.select) { selected = { kind: "field", key: target.dataset.select }; draw(); drawPanel(); focusCard(selected.key); }
    else if (target.dataset.section !== undefined) { selected = { kind: "section", index: Number(target.dataset.section) }; draw(); drawPanel(); }
    else if (target.dataset.addType) {
      const list = selected && selected.kind === "section" ? String(selected.index) : lastSection() >= 0 ? String(lastSection()) : hasLayout() ? "none" : "fields";
      const size = list === "fields" || list === "none" ? form.fields.length : form.layout[Number(list)].fields.length;
      await addField(target.dataset.addType, list, size);
    } else if (target.dataset.move) {
      const key = target.closest("[data-key]").dataset.key;
      const node = target.closest("[data-key]");
      const sibling = target.dataset.move === "-1" ? node.previousElementSibling : node.nextElementSibling;
      if (!sibling) return;
      snapshot();
      if (target.dataset.move === "-1") node.parentElement.insertBefore(node, sibling);
      else node.parentElement.insertBefore(sibling, node);
      readLists();
      draw();
      const again = canvas.querySelector(`[data-key="${CSS.escape(key)}"] [data-move="${target.dataset.move}"]`);
      if (again) again.focus();
    } else if (target.matches("[data-undo]")) restore(undo, redo);
    else if (target.matches("[data-redo]")) restore(redo, undo);
    else if (target.matches("[data-save]")) save();
    else if (target.matches("[data-add-section]")) {
      commit(() => {
        if (lastSection() < 0) form.layout = [{ section: { zh: "字段", en: "Fields" }, columns: 2, fields: form.fields.map((f) => f.key) }, ...(form.layout || [])];
        form.layout.push({ section: { zh: "新分组", en: "New section" }, columns: 2, fields: [] });
        selected = { kind: "section", index: form.layout.length - 1 };
      });
      drawPanel();
    }
  });

  document.addEventListener("keydown", (event) => {
    const typing = event.target.matches("input, textarea, select");
    if (typing || !(event.ctrlKey || event.metaKey)) return;
    if (event.key.toLowerCase() === "z") { event.preventDefault(); if (event.shiftKey) restore(redo, undo); else restore(undo, redo); }
    else if (event.key.toLowerCase() === "y") { event.preventDefault(); restore(redo, undo); }
  });

  // A new field's key follows its label until the admin types a key of their own.
  panel.addEventListener("change", async (event) => {
    const prop = event.target.dataset.prop;
    if (!prop || !prop.startsWith("label_") || !selected || selected.kind !== "field") return;
    const item = field(selected.key);
    if (!item || published.has(item.key) || item.renamed_from || typedKeys.has(item.key)) return;
    const key = await newKey((item.label && (item.label.en || item.label.zh)) || event.target.value, item.key);
    if (key && key !== item.key && renameKey(item, key)) { draw(); drawPanel(); }
  });

  async function start() {
    const model = await (await fetch(`${base}/forms/${formKey}/model`, { credentials: "same-origin" })).json();
    form = model.form;
    revision = model.revision;
    published = new Set(model.published_keys);
    forms = model.forms;
    root.dataset.types = JSON.stringify(model.field_types);
    problems.replaceChildren(...model.problems.map((p) => el("li", {}, el("code", { text: p }))));
    window.Sortable.create(root.querySelector("#palette"), {
      group: { name: "fields", pull: "clone", put: false },
      sort: false,
      forceFallback: true,
    });
    draw();
    drawPanel();
  }

  document.addEventListener("DOMContentLoaded", start);
})();

// --- The dashboard designer's preview: the draft widget's data drawn like a dashboard widget.
(() => {
  const form = document.getElementById("widget-form");
  if (!form) return;
  const source = form.querySelector("[data-source]");
  const catalog = form.querySelector("[data-source-fields]");
  function fieldsOfSource() {
    for (const select of form.querySelectorAll("[data-fields]")) {
      const keep = select.firstElementChild;
      select.replaceChildren(keep);
      for (const option of catalog.content.querySelectorAll(`option[data-form="${CSS.escape(source.value)}"]`)) {
        select.append(option.cloneNode(true));
      }
    }
  }
  source.addEventListener("change", fieldsOfSource);
  document.addEventListener("DOMContentLoaded", fieldsOfSource);
  form.querySelector("[data-widget-preview]").addEventListener("click", () => {
    const section = document.getElementById("widget-preview");
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (!["csrf_token", "action", "revision"].includes(name)) query.append(name, value);
    section.dataset.widget = `${form.dataset.previewUrl}?${query}`;
    section.dataset.chart = form.querySelector("[name=chart]").value;
    section.hidden = false;
    window.formloomLoadWidget(section);
  });
})();
