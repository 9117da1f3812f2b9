// node --test: shapes and layer labels for the Model tab (see static/src/model-panel.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { formatCount, formatShape, leafLayers } from "./model-panel.js";

test("shapes print as lists, nested for several outputs", () => {
  assert.equal(formatShape([1, 64]), "[1, 64]");
  assert.equal(formatShape([[1, 8], [1, 8]]), "[[1, 8], [1, 8]]");
  assert.equal(formatShape(null), "—");
  assert.equal(formatCount(6570), "6,570");
});

test("leaf layers skip containers and say what goes in and out", () => {
  const summary = {
    input_size: [1, 64],
    rows: [
      { depth: 0, name: "", type: "Sequential", output_shape: [1, 10], params: 2410 },
      { depth: 1, name: "0", type: "Linear", output_shape: [1, 32], params: 2080 },
      { depth: 1, name: "1", type: "ReLU", output_shape: [1, 32], params: 0 },
      { depth: 1, name: "2", type: "Linear", output_shape: [1, 10], params: 330 },
    ],
  };
  assert.deepEqual(
    leafLayers(summary).map((layer) => layer.label),
    ["Linear 64→32", "ReLU", "Linear 32→10"],
  );
});

test("convolutions are labelled by their channels", () => {
  const summary = {
    input_size: [1, 1, 28, 28],
    rows: [{ depth: 0, name: "conv", type: "Conv2d", output_shape: [1, 16, 26, 26], params: 160 }],
  };
  assert.equal(leafLayers(summary)[0].label, "Conv2d 1→16");
});
