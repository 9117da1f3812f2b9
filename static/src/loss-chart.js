// The Loss tab: a live uPlot line chart of `metric` events, one series per (name, split).
import uPlot from "uplot";

const STEP_INCREMENTS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];
const COLORS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#0c8599", "#c92a2a"];

/** "loss (train)", "loss (val)", or just "loss" when the metric has no split. */
export function seriesLabel(name, split) {
  return split ? `${name} (${split})` : name;
}

/**
 * Aligned columns for uPlot from {label: Map(step -> value)}: [steps, ...values per series],
 * with null where a series has no point at a step.
 */
export function alignSeries(series) {
  const labels = [...series.keys()];
  const steps = new Set();
  for (const points of series.values()) for (const step of points.keys()) steps.add(step);
  const xs = [...steps].sort((a, b) => a - b);
  return [labels, [xs, ...labels.map((label) => xs.map((x) => series.get(label).get(x) ?? null))]];
}

/** A loss-like metric ("loss", "val_loss", "nll loss"): drawn on the left axis. */
export function isLossName(name) {
  return /loss|nll|mse/i.test(String(name));
}

/**
 * The scale of each series, from their metric names: losses on the left axis ("y"), other
 * quantities that report() adds (accuracy, a learning rate…) on their own right axis ("other"),
 * so a 0.9 accuracy does not flatten a 2.3 → 0.02 loss. With only one kind, all share "y".
 */
export function assignScales(names) {
  const loss = names.map(isLossName);
  if (loss.every(Boolean) || !loss.some(Boolean)) return names.map(() => "y");
  return loss.map((l) => (l ? "y" : "other"));
}

/** The last non-null value of a column: what the legend shows while the cursor is off the chart. */
export function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
  return null;
}

/** A legend value: the point under the cursor, or (cursor off the chart: idx null) the latest. */
function legendValue(format) {
  return (u, v, sidx, idx) => {
    const value = idx == null ? lastValue(u.data[sidx]) : v;
    return value == null ? "—" : format(value);
  };
}

export class LossChart {
  /** @param {HTMLElement} element  #loss-chart */
  constructor(element) {
    this.element = element;
    this.series = new Map();
    this.names = new Map(); // series label -> its metric's name
    this.points = 0;
    this.plot = null;
    this.plotLabels = "";
    this.frame = 0;
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(element);
  }

  reset() {
    this.series = new Map();
    this.names = new Map();
    this.points = 0;
    this.destroyPlot();
    this.element.dataset.points = "0";
    this.element.dataset.series = "";
    const empty = document.createElement("p");
    empty.className = "panel-empty";
    empty.textContent =
      "No training curve yet. When your code computes a loss, its values are drawn here live.";
    this.element.replaceChildren(empty);
  }

  add(metric) {
    const label = seriesLabel(metric.name, metric.split);
    if (!this.series.has(label)) {
      this.series.set(label, new Map());
      this.names.set(label, metric.name);
      // The series' labels, in drawing order ("loss (train),loss (val)"), for tests and tools.
      this.element.dataset.series = [...this.series.keys()].join(",");
    }
    const points = this.series.get(label);
    if (!points.has(metric.step)) this.points += 1;
    points.set(metric.step, metric.value);
    this.element.dataset.points = String(this.points);
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  size() {
    const width = Math.floor(this.element.clientWidth);
    const height = Math.max(140, Math.floor(this.element.clientHeight) - 34); // the legend's room
    return { width, height };
  }

  draw() {
    if (!this.series.size) return;
    const { width, height } = this.size();
    if (width < 50) return; // hidden tab: drawn when it is shown (see resize)
    const [labels, data] = alignSeries(this.series);
    const key = labels.join("\u0000");
    if (this.plot && key === this.plotLabels) {
      this.plot.setData(data);
      return;
    }
    this.destroyPlot();
    this.element.replaceChildren();
    this.plotLabels = key;
    const scales = assignScales(labels.map((label) => this.names.get(label) ?? label));
    const twoAxes = scales.includes("other");
    this.element.dataset.scales = scales.join(",");
    const axisStyle = { stroke: "#5c6470", ticks: { stroke: "#d8dbe0" }, space: 24 };
    this.plot = new uPlot(
      {
        width,
        height,
        class: "loss-plot",
        scales: twoAxes ? { x: { time: false }, y: {}, other: {} } : { x: { time: false } },
        cursor: { drag: { x: true, y: false } },
        legend: { live: true },
        axes: [
          {
            stroke: "#5c6470",
            grid: { stroke: "#eceef1" },
            ticks: { stroke: "#d8dbe0" },
            incrs: STEP_INCREMENTS, // steps are whole numbers: no 2.5 ticks
            space: 50,
            size: 36,
          },
          { ...axisStyle, scale: "y", grid: { stroke: "#eceef1" }, size: 56 },
          // Other quantities (accuracy…) on the right, unlabelled grid: their series are dashed.
          ...(twoAxes ? [{ ...axisStyle, scale: "other", side: 1, grid: { show: false }, size: 56 }] : []),
        ],
        series: [
          { label: "step", value: legendValue(String) },
          ...labels.map((label, i) => ({
            label,
            stroke: COLORS[i % COLORS.length],
            scale: scales[i],
            dash: scales[i] === "other" ? [6, 4] : undefined,
            width: 2,
            spanGaps: true,
            points: { show: (u) => u.data[0].length < 60, size: 5 },
            value: legendValue(formatValue),
          })),
        ],
      },
      data,
      this.element,
    );
  }

  resize() {
    if (!this.series.size) return;
    const { width, height } = this.size();
    if (width < 50) return;
    if (!this.plot) this.draw();
    else if (this.plot.width !== width || this.plot.height !== height) this.plot.setSize({ width, height });
  }

  destroyPlot() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.plotLabels = "";
  }
}

function formatValue(v) {
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return v.toExponential(3);
  return v.toFixed(4);
}
