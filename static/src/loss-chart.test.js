// node --test: how metric points become uPlot's aligned columns (see static/src/loss-chart.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { alignSeries, assignScales, lastValue, seriesLabel } from "./loss-chart.js";

test("train and val become two series over the union of their steps", () => {
  const series = new Map([
    [seriesLabel("loss", "train"), new Map([[0, 2.0], [1, 1.5], [2, 1.0]])],
    [seriesLabel("loss", "val"), new Map([[0, 2.1], [2, 1.2]])],
  ]);
  const [labels, data] = alignSeries(series);
  assert.deepEqual(labels, ["loss (train)", "loss (val)"]);
  assert.deepEqual(data, [
    [0, 1, 2],
    [2.0, 1.5, 1.0],
    [2.1, null, 1.2],
  ]);
});

test("a metric without a split is labelled by its name alone", () => {
  assert.equal(seriesLabel("loss", undefined), "loss");
});

test("the legend's idle value is a column's last point, skipping gaps", () => {
  assert.equal(lastValue([2.1, null, 1.2, null]), 1.2);
  assert.equal(lastValue([null, null]), null);
  assert.equal(lastValue([]), null);
});

test("report()'s other quantities get their own axis beside the loss", () => {
  assert.deepEqual(assignScales(["loss", "loss", "accuracy"]), ["y", "y", "other"]);
  assert.deepEqual(assignScales(["val_loss", "acc"]), ["y", "other"]);
  // One kind only: one axis.
  assert.deepEqual(assignScales(["loss", "loss"]), ["y", "y"]);
  assert.deepEqual(assignScales(["accuracy", "f1"]), ["y", "y"]);
  assert.deepEqual(assignScales([]), []);
});
