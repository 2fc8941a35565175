/**
 * Overlay legends: a gradient bar with its range for continuous maps (the uncertainty),
 * swatches for categorical ones (labels, tissue).
 */
import type { Legend } from "./api/types";
import { el } from "./dom";

/** The CSS gradient of a continuous legend, its stops placed between min and max. */
export function legendGradient(legend: Legend): string {
  const stops = [...legend.stops].sort((a, b) => a.value - b.value);
  if (stops.length === 0) return "transparent";
  if (stops.length === 1) return stops[0].color;
  const [lo, hi] = legendRange(legend);
  const span = hi - lo || 1;
  const parts = stops.map((stop) => {
    const percent = Math.min(100, Math.max(0, ((stop.value - lo) / span) * 100));
    return `${stop.color} ${percent.toFixed(1)}%`;
  });
  return `linear-gradient(to right, ${parts.join(", ")})`;
}

/** The legend's [min, max]: as given, else the range of its stops. */
export function legendRange(legend: Legend): [number, number] {
  const values = legend.stops.map((stop) => stop.value);
  const lo = legend.min ?? (values.length ? Math.min(...values) : 0);
  const hi = legend.max ?? (values.length ? Math.max(...values) : 1);
  return [lo, hi];
}

export function formatValue(value: number): string {
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  return magnitude >= 100 || magnitude < 0.01 ? value.toPrecision(2) : String(Number(value.toFixed(2)));
}

export function legendElement(legend: Legend, testId: string): HTMLElement {
  const box = el("div", { class: "legend", "data-testid": testId });
  if (legend.type === "continuous") {
    const [lo, hi] = legendRange(legend);
    const bar = el("div", { class: "legend-bar", title: legend.title });
    bar.style.background = legendGradient(legend);
    box.append(
      bar,
      el("div", { class: "legend-range" },
        el("span", { "data-testid": `${testId}-min` }, formatValue(lo)),
        el("span", { class: "legend-title" }, legend.title),
        el("span", { "data-testid": `${testId}-max` }, formatValue(hi))),
    );
  } else {
    const list = el("div", { class: "legend-swatches" });
    for (const entry of legend.entries) {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = entry.color;
      list.append(el("span", { class: "legend-entry", title: `${entry.label} (${entry.value})` }, swatch, entry.label));
    }
    box.append(list);
  }
  return box;
}
