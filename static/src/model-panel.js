// The Model tab: the architecture from a `summary` event, as a table and a layer diagram.

/** "[1, 64]", "[[1, 8], [1, 8]]", or "—" when torchinfo could not tell. */
export function formatShape(shape) {
  if (!Array.isArray(shape) || !shape.length) return "—";
  return Array.isArray(shape[0])
    ? `[${shape.map(formatShape).join(", ")}]`
    : `[${shape.join(", ")}]`;
}

export function formatCount(n) {
  return Number(n || 0).toLocaleString("en-US");
}

/** The leaf layers (rows with no deeper row right after them), each with its in/out label. */
export function leafLayers(summary) {
  const rows = summary.rows || [];
  const leaves = [];
  let previousShape = summary.input_size;
  rows.forEach((row, index) => {
    const next = rows[index + 1];
    if (next && next.depth > row.depth) return; // a container: its children are drawn
    leaves.push({ ...row, label: layerLabel(row, previousShape) });
    if (Array.isArray(row.output_shape) && row.output_shape.length) previousShape = row.output_shape;
  });
  return leaves;
}

function lastDim(shape) {
  if (!Array.isArray(shape) || !shape.length || Array.isArray(shape[0])) return null;
  return shape[shape.length - 1];
}

function channelDim(shape) {
  if (!Array.isArray(shape) || shape.length < 3 || Array.isArray(shape[0])) return null;
  return shape[1];
}

/** "Linear 64→32", "Conv2d 1→16", or the type and its output shape. */
function layerLabel(row, inputShape) {
  const type = row.type;
  if (/^(Linear|LazyLinear|Bilinear)$/.test(type)) {
    const a = lastDim(inputShape);
    const b = lastDim(row.output_shape);
    if (a != null && b != null) return `${type} ${a}→${b}`;
  }
  if (/^(Lazy)?Conv(Transpose)?[123]d$/.test(type)) {
    const a = channelDim(inputShape);
    const b = channelDim(row.output_shape);
    if (a != null && b != null) return `${type} ${a}→${b}`;
  }
  return type;
}

export class ModelPanel {
  /** @param {HTMLElement} element  #model-summary */
  constructor(element) {
    this.element = element;
  }

  reset() {
    const empty = document.createElement("p");
    empty.className = "panel-empty";
    empty.textContent =
      "The model's layers appear here when your code builds it (press Run or Check).";
    this.element.replaceChildren(empty);
    delete this.element.dataset.layers;
  }

  show(summary) {
    const heading = document.createElement("p");
    heading.className = "model-heading";
    const strong = document.createElement("strong");
    strong.textContent = summary.model;
    heading.append(strong, ` on an input of shape ${formatShape(summary.input_size)}`);

    const wrap = document.createElement("div");
    wrap.className = "model-layout";
    wrap.append(this.table(summary), this.diagram(summary));
    this.element.replaceChildren(heading, wrap);
    this.element.dataset.layers = String((summary.rows || []).length);
  }

  table(summary) {
    const table = document.createElement("table");
    table.className = "model-table";
    const head = table.createTHead().insertRow();
    for (const [text, cls] of [["Layer", ""], ["Type", ""], ["Output shape", ""], ["Params", "num"]]) {
      const th = document.createElement("th");
      th.textContent = text;
      th.scope = "col";
      if (cls) th.className = cls;
      head.append(th);
    }
    const body = table.createTBody();
    for (const row of summary.rows || []) {
      const tr = body.insertRow();
      if (!row.trainable && row.params) tr.className = "frozen";
      const name = tr.insertCell();
      name.className = `layer-name depth-${Math.min(8, Math.max(0, row.depth | 0))}`;
      name.textContent = row.name || "(model)";
      tr.insertCell().textContent = row.type;
      const shape = tr.insertCell();
      shape.className = "mono";
      shape.textContent = formatShape(row.output_shape);
      const params = tr.insertCell();
      params.className = "num";
      params.textContent = formatCount(row.params);
      if (!row.trainable && row.params) params.title = "Frozen: training does not change these";
    }
    const foot = table.createTFoot();
    const total = foot.insertRow();
    const label = total.insertCell();
    label.colSpan = 3;
    label.textContent = "Total parameters";
    const count = total.insertCell();
    count.className = "num";
    count.textContent = formatCount(summary.total_params);
    const trainable = foot.insertRow();
    const label2 = trainable.insertCell();
    label2.colSpan = 3;
    label2.textContent = "Trainable parameters";
    const count2 = trainable.insertCell();
    count2.className = "num";
    count2.textContent = formatCount(summary.trainable_params);
    return table;
  }

  diagram(summary) {
    const list = document.createElement("ol");
    list.className = "model-diagram";
    list.setAttribute("aria-label", "Layer diagram");
    const box = (text, detail, cls) => {
      const item = document.createElement("li");
      item.className = `layer-box ${cls}`;
      const title = document.createElement("span");
      title.className = "layer-box-title";
      title.textContent = text;
      item.append(title);
      if (detail) {
        const small = document.createElement("span");
        small.className = "layer-box-detail";
        small.textContent = detail;
        item.append(small);
      }
      list.append(item);
    };
    box("Input", formatShape(summary.input_size), "layer-io");
    for (const leaf of leafLayers(summary)) {
      const params = leaf.params ? `${formatCount(leaf.params)} params` : "";
      const shape = formatShape(leaf.output_shape);
      box(leaf.label, [shape, params].filter(Boolean).join(" · "), `layer-${kind(leaf.type)}`);
    }
    return list;
  }
}

/** A colour family for the box: weights, activations, the rest. */
function kind(type) {
  if (/Linear|Conv|Embedding|RNN|LSTM|GRU|Attention/.test(type)) return "weights";
  if (/ReLU|Sigmoid|Tanh|GELU|Softmax|SiLU|ELU|Mish|Hardswish|Softplus/.test(type)) return "activation";
  if (/Norm/.test(type)) return "norm";
  if (/Dropout/.test(type)) return "dropout";
  return "other";
}
