// New session: the seed's fields; the API's validation messages appear next to the fields they name.

import { ApiError, api, context, escapeHtml } from "./api.js";

// [JSON path, label, kind, choices or attributes, initial value]. Empty optional fields are left
// out of the request, so that the defaults apply: the API's, which the placeholders show as the
// OpenAPI document gives them, or else the trainer's.
const SECTIONS = [
  ["Session", [
    ["name", "Name", "text", {}, "tiny llama"],
    ["description", "Description", "text", { placeholder: "optional" }],
    ["priority", "Priority", "int", {}],
    ["placement", "Placement", "select", ["", "spread", "pack"]],
  ]],
  ["Model", [
    ["modelConfig.type", "Type", "select", ["llama2", "llama3", "bert"], "llama2"],
    ["modelConfig.size", "Size", "select", ["debug", "125M", "1B", "7B", "13B", "70B"], "debug"],
    ["modelConfig.precision", "Precision", "select", ["fp32", "bf16", "fp16"], "fp32"],
  ]],
  ["Training", [
    ["trainingConfig.batchSize", "Batch size", "int", {}, "8"],
    ["trainingConfig.learningRate", "Learning rate", "float", {}, "0.003"],
    ["trainingConfig.epochs", "Epochs", "int", {}, "1"],
    ["trainingConfig.optimizer", "Optimizer", "select", ["adamw", "adam", "sgd"], "adamw"],
    ["trainingConfig.maxSteps", "Max steps", "int", {}, "200"],
    ["trainingConfig.seed", "Seed", "int", {}],
    ["trainingConfig.microBatchSize", "Micro-batch size", "int", { placeholder: "trainer default" }],
    ["trainingConfig.warmupSteps", "Warmup steps", "int", { placeholder: "trainer default" }],
    ["trainingConfig.schedule", "Schedule", "select", ["", "cosine", "linear", "constant"]],
    ["trainingConfig.weightDecay", "Weight decay", "float", { placeholder: "trainer default" }],
    ["trainingConfig.gradClip", "Gradient clip", "float", { placeholder: "trainer default" }],
  ]],
  ["Distribution", [
    ["distributedConfig.nodes", "Nodes", "int", {}, "1"],
    ["distributedConfig.gpusPerNode", "GPUs per node", "int", {}, "1"],
    ["distributedConfig.strategy", "Strategy", "select", ["ddp", "fsdp", "diloco"], "ddp"],
    ["distributedConfig.diloco.innerSteps", "DiLoCo inner steps", "int", { placeholder: "trainer default", diloco: true }],
    ["distributedConfig.diloco.outerLr", "DiLoCo outer lr", "float", { placeholder: "trainer default", diloco: true }],
    ["distributedConfig.diloco.outerMomentum", "DiLoCo momentum", "float", { placeholder: "trainer default", diloco: true }],
    ["distributedConfig.diloco.islandSize", "DiLoCo island size", "int", { placeholder: "one island per node", diloco: true }],
  ]],
  ["Data", [
    ["dataConfig.dataPath", "Data path", "text", { placeholder: "built-in corpus; or a file under datasets/raw" }],
    ["dataConfig.seqLength", "Sequence length", "int", {}],
    ["dataConfig.tokenizer", "Tokenizer", "select", ["", "byte", "bpe"]],
    ["dataConfig.validationSplit", "Validation split", "float", { placeholder: "trainer default" }],
  ]],
  ["Checkpoints", [
    ["checkpointConfig.interval", "Interval (steps, 0: none)", "int", {}],
    ["checkpointConfig.keepLast", "Keep last", "int", { placeholder: "trainer default" }],
  ]],
];

function input([path, label, kind, spec, initial], known) {
  const id = `f-${path.replaceAll(".", "-")}`;
  let control;
  if (kind === "select") {
    const choices = spec.map((c) => `<option value="${c}" ${c === initial ? "selected" : ""}>${
      c || (path in known ? `default (${known[path]})` : "default")}</option>`);
    control = `<select id="${id}" name="${path}">${choices.join("")}</select>`;
  } else {
    const type = kind === "text" ? "text" : "number";
    const step = kind === "float" ? ' step="any"' : "";
    const placeholder = path in known ? `default: ${known[path]}` : spec.placeholder ?? "";
    control = `<input id="${id}" name="${path}" type="${type}"${step} value="${escapeHtml(initial ?? "")}"
      placeholder="${escapeHtml(placeholder)}">`;
  }
  return `<div class="field" data-field="${path}" ${spec.diloco ? "data-diloco" : ""}>
      <label for="${id}">${label}</label>${control}<span class="field-error" id="${id}-error"></span></div>`;
}

/** The request body from the form: numbers as numbers, empty optional fields left out. */
function body(form) {
  const request = {};
  const kinds = new Map(SECTIONS.flatMap(([, fields]) => fields.map((f) => [f[0], f[2]])));
  const strategy = form.elements["distributedConfig.strategy"].value;
  for (const element of form.elements) {
    if (!element.name || element.value === "") continue;
    if (element.name.startsWith("distributedConfig.diloco.") && strategy !== "diloco") continue;
    const kind = kinds.get(element.name);
    let value = element.value;
    if (kind === "int" || kind === "float") {
      value = Number(value);
      if (Number.isNaN(value)) value = element.value; // let the API name the field
    }
    const keys = element.name.split(".");
    let target = request;
    keys.slice(0, -1).forEach((k) => (target = target[k] ??= {}));
    target[keys[keys.length - 1]] = value;
  }
  return request;
}

/** {"trainingConfig.seed": 1234, ...}: the request's defaults, as the OpenAPI document gives them. */
async function defaults() {
  const document = await fetch("/v3/api-docs").then((r) => r.json());
  const schemas = document.components.schemas;
  const found = {};
  function walk(schema, prefix) {
    for (const [name, property] of Object.entries(schema.properties || {})) {
      const ref = property.$ref || property.anyOf?.find((s) => s.$ref)?.$ref;
      if (ref) walk(schemas[ref.split("/").pop()], `${prefix}${name}.`);
      else if (property.default !== undefined) found[`${prefix}${name}`] = property.default;
    }
  }
  walk(schemas.CreateSessionRequest, "");
  return found;
}

export async function newSessionView(main) {
  const known = await defaults().catch(() => ({}));
  main.innerHTML = `
    <h1>New session</h1>
    <form class="session" id="session-form" novalidate>
      ${SECTIONS.map(([title, fields]) =>
        `<fieldset><legend>${title}</legend>${fields.map((f) => input(f, known)).join("")}</fieldset>`).join("")}
      <div class="form-actions">
        <button class="primary" type="submit" id="create">Create session</button>
        <span class="muted">as ${escapeHtml(context.info.owner)}</span>
      </div>
    </form>
    <div id="form-error" class="error-box" hidden></div>`;
  const form = main.querySelector("#session-form");
  const formError = main.querySelector("#form-error");

  function showDiloco() {
    const diloco = form.elements["distributedConfig.strategy"].value === "diloco";
    form.querySelectorAll("[data-diloco]").forEach((f) => (f.hidden = !diloco));
  }
  form.elements["distributedConfig.strategy"].onchange = showDiloco;
  showDiloco();

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    formError.hidden = true;
  }

  form.onsubmit = async (event) => {
    event.preventDefault();
    clearErrors();
    const button = main.querySelector("#create");
    button.disabled = true;
    try {
      const created = await api("/api/sessions", { method: "POST", body: body(form) });
      location.hash = `#/sessions/${created.id}`;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const unplaced = [];
      for (const { field, message } of e.fields) {
        // A message about a whole section (e.g. "modelConfig") goes next to its first field.
        const box = form.querySelector(`[data-field="${CSS.escape(field)}"]`)
          || form.querySelector(`[data-field^="${CSS.escape(field)}."]`);
        if (box && !box.hidden) {
          const error = box.querySelector(".field-error");
          error.textContent = error.textContent ? `${error.textContent}; ${message}` : message;
          box.querySelector("input, select").setAttribute("aria-invalid", "true");
        } else {
          unplaced.push(`${field}: ${message}`);
        }
      }
      if (unplaced.length || !e.fields.length) {
        formError.hidden = false;
        formError.textContent = [e.message, ...unplaced].join("\n");
      }
    } finally {
      button.disabled = false;
    }
  };
}
