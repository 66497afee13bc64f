// The visual rule builder of a segment (Alpine.js). The page renders the builder's markup and
// a JSON block with the rule tree, the workspace's catalog (traits with types, events, fields,
// scores, RFM classes, channels, identifier types, other segments) and the translated words.
// The tree is edited in place; every change is posted, debounced, to /segments/preview, which
// answers the count, the time it took, a sample, or the validation errors with their paths.
// This file is loaded without `defer`, before Alpine, so the component exists when Alpine starts.
(function () {
  "use strict";

  const DEBOUNCE_MS = 400;
  const GROUPS = ["all", "any", "not"];
  const NO_VALUE = ["exists", "not_exists", "is_true", "is_false"];
  const DAYS = ["days_ago_more_than", "days_ago_within", "days_ahead_within", "anniversary_within"];
  const NUMBER_OPS = ["gt", "gte", "lt", "lte"];
  const PREFERRED = { string: "eq", number: "gte", boolean: "is_true", date: "days_ago_within", list: "contains" };
  const CANONICAL_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;

  function isGroup(node) {
    return node && GROUPS.includes(node.kind);
  }

  function numberOrNull(text) {
    const trimmed = String(text).trim().replace(",", ".");
    if (trimmed === "") return null;
    const value = Number(trimmed);
    return Number.isFinite(value) ? value : trimmed;
  }

  function integerOrNull(text) {
    const value = numberOrNull(text);
    return typeof value === "number" ? Math.trunc(value) : value;
  }

  // A property filter's value: numbers and true/false are compared as such, the rest as text.
  function autoValue(text) {
    const trimmed = String(text).trim();
    if (CANONICAL_NUMBER.test(trimmed)) return Number(trimmed);
    if (trimmed === "true" || trimmed === "false") return trimmed === "true";
    return text;
  }

  function splitList(text) {
    return String(text).split(/[,;\n]/).map((part) => part.trim()).filter((part) => part !== "");
  }

  function listValue(text, type) {
    const items = splitList(text);
    if (type === "number") return items.map(numberOrNull);
    if (type === "auto") return items.map(autoValue);
    return items;
  }

  function asText(value) {
    if (value === null || value === undefined) return "";
    if (Array.isArray(value)) return value.join(", ");
    return String(value);
  }

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
  }

  function segmentBuilder() {
    return {
      tree: null,
      catalog: {},
      L: {},
      ops: {},
      segmentId: null,
      editable: true,
      errors: [],
      raw: {},
      seq: 0,
      count: null,
      tookMs: null,
      sample: [],
      state: "idle", // idle | loading | ready | invalid | empty | failed
      failure: "",
      timer: null,
      inflight: null,
      jsonText: "",
      jsonDirty: false,
      jsonError: "",

      init() {
        const data = JSON.parse(document.getElementById("seg-builder-data").textContent);
        this.catalog = data.catalog;
        this.L = data.labels;
        this.ops = data.ops;
        this.segmentId = data.segment_id;
        this.editable = data.editable;
        let root = data.rules;
        if (!root || typeof root !== "object") root = { kind: "all", rules: [] };
        if (!isGroup(root)) root = { kind: "all", rules: [root] };
        this.tree = this.keyed(root);
        this.errors = data.errors || [];
        this.jsonText = this.json(true);
        this.$watch("tree", () => this.changed());
        if (this.errors.length) {
          this.state = "invalid";
        } else {
          this.refresh();
        }
      },

      // --- the tree ---
      keyed(node) {
        if (node && typeof node === "object" && !Array.isArray(node)) {
          node._k = ++this.seq;
          for (const value of Object.values(node)) {
            if (Array.isArray(value)) value.forEach((item) => this.keyed(item));
            else if (value && typeof value === "object") this.keyed(value);
          }
        }
        return node;
      },
      plain() {
        return JSON.parse(JSON.stringify(this.tree, (key, value) => (key.startsWith("_") ? undefined : value)));
      },
      json(pretty) {
        return JSON.stringify(this.plain(), null, pretty ? 2 : 0);
      },
      rows() {
        const out = [];
        let num = 0;
        const visit = (node, path, depth, parent, index) => {
          if (!node) return;
          if (isGroup(node)) {
            out.push({ type: "open", key: "o" + node._k, node, path, depth, parent, index, num: null });
            if (node.kind === "not") {
              visit(node.rule, path + ".rule", depth + 1, node, 0);
            } else {
              (node.rules || []).forEach((child, i) => visit(child, `${path}.rules[${i}]`, depth + 1, node, i));
            }
            out.push({ type: "close", key: "c" + node._k, node, path, depth, parent, index });
          } else {
            out.push({ type: "leaf", key: "l" + node._k, node, path, depth, parent, index, num: ++num });
          }
        };
        visit(this.tree, "rules", 0, null, 0);
        return out;
      },
      defaultKind() {
        if (Object.keys(this.catalog.traits || {}).length) return "trait";
        if ((this.catalog.events || []).length) return "event";
        return "attribute";
      },
      newLeaf(kind) {
        const events = this.catalog.events || [];
        const traits = Object.keys(this.catalog.traits || {});
        switch (kind) {
          case "trait": {
            // "is set" counts at once; the marketer then picks the comparison.
            return { kind, field: traits[0] || "", op: "exists", value: null };
          }
          case "attribute":
            return { kind, field: "orders_count", op: "gte", value: 1 };
          case "event":
            return { kind, name: events[0] || "", where: [], within_days: 30, measure: "count", property: null, op: "gte", value: 1 };
          case "sequence":
            return {
              kind,
              first: { name: events[0] || "", where: [] },
              then_not: { name: events[1] || events[0] || "", where: [] },
              within_hours: 24,
              in_last_days: 30,
            };
          case "reachable":
            return { kind, channel: "email", purpose: "marketing" };
          case "consent":
            return { kind, channel: "email", purpose: "marketing", status: "granted" };
          case "identifier":
            return { kind, type: (this.catalog.identifier_types || [])[0] || "email" };
          case "segment": {
            const other = this.otherSegments()[0];
            return { kind, segment_id: other ? other.id : "", member: true };
          }
          case "rfm":
            return { kind, classes: [(this.catalog.rfm_classes || ["champions"])[0]] };
          case "score":
            return { kind, field: "churn_risk", op: "gte", value: 0.5 };
          case "leaving":
            return { kind, value: true };
          default:
            return { kind: "all", rules: [] };
        }
      },
      children(group) {
        if (group.kind === "not") return group.rule ? [group.rule] : [];
        return group.rules || [];
      },
      canAdd(group) {
        return group.kind !== "not" || !group.rule;
      },
      put(group, node) {
        this.keyed(node);
        if (group.kind === "not") group.rule = node;
        else group.rules.push(node);
      },
      addCondition(group) {
        this.put(group, this.newLeaf(this.defaultKind()));
      },
      addGroup(group) {
        this.put(group, { kind: "any", rules: [this.newLeaf(this.defaultKind())] });
      },
      remove(row) {
        const parent = row.parent;
        if (!parent) return;
        if (parent.kind === "not") parent.rule = null;
        else parent.rules.splice(row.index, 1);
      },
      setGroup(row, kind) {
        const node = row.node;
        if (kind === node.kind) return;
        const kids = this.children(node);
        let replacement;
        if (kind === "not") {
          replacement = { kind: "not", rule: kids.length === 1 ? kids[0] : { kind: node.kind, rules: kids } };
        } else {
          replacement = { kind, rules: node.kind === "not" && node.rule && isGroup(node.rule) && node.rule.kind !== "not" ? node.rule.rules : kids };
        }
        this.keyed(replacement);
        if (row.parent === null) this.tree = replacement;
        else if (row.parent.kind === "not") row.parent.rule = replacement;
        else row.parent.rules.splice(row.index, 1, replacement);
      },
      setKind(row, kind) {
        const leaf = this.keyed(this.newLeaf(kind));
        if (row.parent === null) this.tree = { kind: "all", rules: [leaf] };
        else if (row.parent.kind === "not") row.parent.rule = leaf;
        else row.parent.rules.splice(row.index, 1, leaf);
      },

      // --- fields, operators and values ---
      typeOf(node) {
        if (node.kind === "trait") return (this.catalog.traits || {})[node.field] || node._type || "string";
        if (node.kind === "attribute") return (this.catalog.attributes || {})[node.field] || "string";
        return "number";
      },
      known(node) {
        return node.field in (this.catalog.traits || {});
      },
      opsFor(node) {
        return (this.catalog.operators || {})[this.typeOf(node)] || [];
      },
      fitOp(node) {
        const ops = this.opsFor(node);
        if (!ops.includes(node.op)) {
          const type = this.typeOf(node);
          this.setOp(node, ops.includes(PREFERRED[type]) ? PREFERRED[type] : ops[0], type);
        }
      },
      setField(node, field) {
        const before = this.valueKind(this.typeOf(node), node.op);
        node.field = field;
        this.fitOp(node);
        if (this.valueKind(this.typeOf(node), node.op) !== before) this.resetValue(node);
      },
      setType(node, type) {
        node._type = type;
        this.fitOp(node);
        this.resetValue(node);
      },
      setOp(node, op, type) {
        const before = this.valueKind(type || this.typeOf(node), node.op);
        node.op = op;
        if (this.valueKind(type || this.typeOf(node), op) !== before || node.value === undefined) this.resetValue(node, type);
      },
      valueKind(type, op) {
        if (NO_VALUE.includes(op)) return "none";
        if (op === "in" || op === "not_in") return "list";
        if (op === "between") return "range";
        if (DAYS.includes(op)) return "days";
        if (op === "before" || op === "after") return "date";
        if (NUMBER_OPS.includes(op)) return "number";
        if ((op === "eq" || op === "ne") && type === "number") return "number";
        if ((op === "eq" || op === "ne") && type === "date") return "date";
        return "text";
      },
      resetValue(node, type) {
        const kind = this.valueKind(type || this.typeOf(node), node.op);
        this.forget(node);
        node.value = { none: null, list: [], range: [null, null], days: 30, date: "", number: null, text: "" }[kind];
      },
      forget(node) {
        for (const key of Object.keys(this.raw)) {
          if (key.startsWith(node._k + ":")) delete this.raw[key];
        }
      },
      // What an input shows: the text as typed (so "1." or "a, " survive), else the value.
      show(node, slot, value) {
        const key = node._k + ":" + slot;
        return key in this.raw ? this.raw[key] : asText(value);
      },
      typed(node, slot, text) {
        this.raw[node._k + ":" + slot] = text;
      },
      setValue(node, text, how) {
        this.typed(node, "value", text);
        if (how === "number") node.value = numberOrNull(text);
        else if (how === "days") node.value = integerOrNull(text);
        else if (how.startsWith("list:")) node.value = listValue(text, how.slice(5));
        else if (how === "auto") node.value = autoValue(text);
        else node.value = text;
      },
      setRange(node, index, text) {
        this.typed(node, "value" + index, text);
        const pair = Array.isArray(node.value) ? [...node.value, null, null].slice(0, 2) : [null, null];
        pair[index] = numberOrNull(text);
        node.value = pair;
      },
      rangeAt(node, index) {
        return Array.isArray(node.value) ? node.value[index] : null;
      },
      setNumber(node, prop, text, optional) {
        this.typed(node, prop, text);
        const value = integerOrNull(text);
        node[prop] = value === null && !optional ? null : value;
      },
      setMeasure(node, measure) {
        node.measure = measure;
        node.property = measure === "count" ? null : node.property || "";
      },
      setCompare(node, op) {
        const wasRange = node.op === "between";
        node.op = op;
        if (wasRange !== (op === "between")) {
          this.forget(node);
          node.value = op === "between" ? [null, null] : null;
        }
      },
      filterKind(filter) {
        if (filter.op === "exists") return "none";
        if (filter.op === "in" || filter.op === "not_in") return "list";
        if (NUMBER_OPS.includes(filter.op)) return "number";
        return "text";
      },
      setFilterOp(filter, op) {
        const before = this.filterKind(filter);
        filter.op = op;
        if (this.filterKind(filter) !== before) {
          this.forget(filter);
          filter.value = { none: null, list: [], number: null, text: "" }[this.filterKind(filter)];
        }
      },
      addFilter(ref) {
        ref.where.push(this.keyed({ property: "", op: "eq", value: "" }));
      },
      toggle(list, item) {
        const at = list.indexOf(item);
        if (at >= 0) list.splice(at, 1);
        else list.push(item);
      },
      otherSegments() {
        return (this.catalog.segments || []).filter((s) => s.id !== this.segmentId);
      },

      // --- errors at their place in the tree ---
      owners() {
        const paths = this.rows().filter((row) => row.type !== "close").map((row) => row.path);
        const owned = {};
        for (const error of this.errors) {
          let best = "rules";
          for (const path of paths) {
            const inside = error.path === path || error.path.startsWith(path + ".") || error.path.startsWith(path + "[");
            if (inside && path.length >= best.length) best = path;
          }
          (owned[best] = owned[best] || []).push(error);
        }
        return owned;
      },
      errorsAt(row) {
        return this.owners()[row.path] || [];
      },
      bad(row, slot) {
        const prefix = row.path + "." + slot;
        return this.errors.some((e) => e.path === prefix || e.path.startsWith(prefix + "[") || e.path.startsWith(prefix + ".")) ? "true" : null;
      },
      where(error) {
        const row = this.rows().find((r) => r.type !== "close" && r.path === this.ownerPath(error));
        return row && row.num ? "#" + row.num + ": " : "";
      },
      ownerPath(error) {
        const owned = this.owners();
        return Object.keys(owned).find((path) => owned[path].includes(error));
      },

      // --- the live count ---
      changed() {
        if (!this.jsonDirty) this.jsonText = this.json(true);
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.refresh(), DEBOUNCE_MS);
      },
      async refresh() {
        if (this.tree && isGroup(this.tree) && this.children(this.tree).length === 0) {
          this.state = "empty";
          this.errors = [];
          return;
        }
        if (this.inflight) this.inflight.abort();
        const control = new AbortController();
        this.inflight = control;
        this.state = this.state === "ready" ? "loading" : this.state === "idle" ? "loading" : this.state;
        let response;
        try {
          response = await fetch("/segments/preview", {
            method: "POST",
            headers: { "Content-Type": "application/json", "X-CSRF-Token": this.$root.dataset.csrf },
            body: JSON.stringify({ rules: this.plain(), segment_id: this.segmentId }),
            signal: control.signal,
            credentials: "same-origin",
          });
        } catch (error) {
          if (error.name === "AbortError") return;
          this.fail("network");
          return;
        }
        let body = null;
        try {
          body = await response.json();
        } catch (error) {
          body = null;
        }
        if (this.inflight !== control) return;
        this.inflight = null;
        if (response.ok && body && body.ok) {
          this.count = body.count;
          this.tookMs = body.took_ms;
          this.sample = body.sample;
          this.errors = [];
          this.state = "ready";
        } else if (response.status === 422 && body && Array.isArray(body.errors)) {
          this.errors = body.errors;
          this.state = "invalid";
        } else {
          this.fail(String(response.status));
        }
      },
      fail(status) {
        this.state = "failed";
        this.failure = format(this.L.failed, { status });
      },
      number(value) {
        return value === null ? "—" : new Intl.NumberFormat(document.documentElement.lang || "en").format(value);
      },
      countWords() {
        const lang = document.documentElement.lang || "en";
        const category = new Intl.PluralRules(lang).select(this.count === null ? 5 : this.count);
        return this.L.count[category] || this.L.count.other;
      },
      tookText() {
        return this.tookMs === null ? "" : format(this.L.took, { ms: this.number(this.tookMs) });
      },
      who(person) {
        return person.name || person.email || person.phone || this.L.anyone;
      },

      // --- the JSON view ---
      applyJson() {
        let parsed;
        try {
          parsed = JSON.parse(this.jsonText);
        } catch (error) {
          this.jsonError = this.L.json_bad + " " + error.message;
          return;
        }
        if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
          this.jsonError = this.L.json_bad;
          return;
        }
        this.jsonError = "";
        this.jsonDirty = false;
        this.raw = {};
        this.tree = this.keyed(isGroup(parsed) ? parsed : { kind: "all", rules: [parsed] });
      },
      resetJson() {
        this.jsonDirty = false;
        this.jsonError = "";
        this.jsonText = this.json(true);
      },
    };
  }

  document.addEventListener("alpine:init", function () {
    window.Alpine.data("segmentBuilder", segmentBuilder);
  });

  // Warn before leaving a page with unsaved edits to the segment.
  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("seg-form");
    if (!form) return;
    const saved = form.querySelector("input[name=rules]");
    let start = null;
    let submitting = false;
    setTimeout(function () {
      start = saved ? saved.value : null;
    }, 0);
    let touched = false;
    form.addEventListener("input", function () {
      touched = true;
    });
    form.addEventListener("submit", function () {
      submitting = true;
    });
    window.addEventListener("beforeunload", function (event) {
      const rulesChanged = saved && start !== null && saved.value !== start;
      if (!submitting && (touched || rulesChanged)) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  });
})();
