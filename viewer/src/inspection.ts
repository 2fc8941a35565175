/**
 * The inspection mode (AI²Seg, Fig. 4): a run's images or regions most suspect first, the
 * open item's three views side by side (the annotation; the combined view with consistent
 * instances green, suspect ones red and numbered, the selected one white; the prediction),
 * its instances, the α and γ sliders that re-score everything live, and the decisions
 * (keep the annotation, accept the prediction, re-annotate) for the item or one instance,
 * each stored on the server as a new correction version.
 */
import { ApiError, type SiteApi, type Weights } from "./api/client";
import type {
  InspectionDecision,
  InspectionInstance,
  InspectionItem,
  InspectionItemDetail,
  InspectionSummary,
  InspectionView,
} from "./api/types";
import { button, byId, el, formatTime } from "./dom";
import {
  debounce,
  formatWeight,
  instanceAt,
  Latest,
  orderInstances,
  orderItems,
  pickItem,
  stepInstance,
  stepItem,
  type Debounced,
  type ViewState,
} from "./inspection-state";
import { describe, notify, track } from "./status";

export const VIEWS: InspectionView[] = ["annotation", "combined", "prediction"];
const VIEW_TITLES: Record<InspectionView, string> = {
  annotation: "Annotation",
  combined: "Combined",
  prediction: "Prediction",
};
export const DECISIONS: { decision: InspectionDecision; label: string; key: string }[] = [
  { decision: "keep-annotation", label: "Keep ann.", key: "K" },
  { decision: "accept-prediction", label: "Accept pred.", key: "A" },
  { decision: "re-annotate", label: "Re-annotate", key: "C" },
];
const SLIDER_REST_MS = 250;
/** Suspect: the contract's threshold on an instance's score. */
const SUSPECT = 0.5;

/** Where the panel's parts go in index.html. */
interface Parts {
  runs: HTMLSelectElement;
  alpha: HTMLInputElement;
  gamma: HTMLInputElement;
  alphaText: HTMLOutputElement;
  gammaText: HTMLOutputElement;
  items: HTMLElement;
  counts: HTMLElement;
  instances: HTMLElement;
  instanceCounts: HTMLElement;
  views: HTMLElement;
  itemInfo: HTMLElement;
  itemButtons: HTMLButtonElement[];
  instanceButtons: HTMLButtonElement[];
  instanceLabel: HTMLElement;
}

export class InspectionPanel {
  runs: InspectionSummary[] = [];
  run: InspectionSummary | null = null;
  /** The run's items, most suspect first at the current α and γ. */
  items: InspectionItem[] = [];
  item: InspectionItemDetail | null = null;
  /** The selected instance's number; null: the item as a whole. */
  instance: number | null = null;
  alpha = 0;
  gamma = 0;
  /** Hears of every change worth keeping in the URL. */
  onChange: () => void = () => undefined;
  private readonly images = new Map<InspectionView, HTMLImageElement>();
  private readonly parts: Parts;
  private readonly listRequests = new Latest();
  private readonly itemRequests = new Latest();
  private readonly viewRequests = new Map(VIEWS.map((view) => [view, new Latest()]));
  private readonly weightsChanged: Debounced<[]>;
  private settling: (() => void) | null = null;

  constructor(
    private readonly api: SiteApi,
    decide: (decision: InspectionDecision, whole: boolean) => void,
    help: () => void,
  ) {
    const slider = (id: string, title: string) => el("input", {
      type: "range", min: 0, max: 1, step: 0.05, value: 0, id, "data-testid": id, title, "aria-label": title,
    });
    this.parts = {
      runs: el("select", { "data-testid": "inspection-run", title: "Inspection run", "aria-label": "Inspection run" }),
      alpha: slider("alpha", "α: how much the model's certainty weighs (0 = not at all)"),
      gamma: slider("gamma", "γ: how much an unmatched instance's size weighs (0 = not at all)"),
      alphaText: el("output", { "data-testid": "alpha-value" }),
      gammaText: el("output", { "data-testid": "gamma-value" }),
      items: byId("inspection-items"),
      counts: byId("inspection-counts"),
      instances: byId("inspection-instances"),
      instanceCounts: byId("instance-counts"),
      views: byId("inspection-views"),
      itemInfo: el("span", { class: "item-info", "data-testid": "inspection-item-info" }),
      itemButtons: [],
      instanceButtons: [],
      instanceLabel: el("span", { class: "instance-label", "data-testid": "instance-label" }, "Instance"),
    };
    const { parts } = this;
    parts.runs.addEventListener("change", () => {
      parts.runs.blur();
      void this.selectRun(Number(parts.runs.value));
    });
    this.weightsChanged = debounce(() => void this.rescore(), SLIDER_REST_MS);
    for (const [input, name] of [[parts.alpha, "alpha"], [parts.gamma, "gamma"]] as const) {
      input.addEventListener("input", () => {
        this[name] = Number(input.value);
        this.showWeights();
        this.holdBusy();
        this.weightsChanged();
      });
    }
    byId("inspection-controls").replaceChildren(
      el("label", { class: "run" }, "Run", parts.runs),
      el("label", { class: "weight" }, "α", parts.alpha, parts.alphaText),
      el("label", { class: "weight" }, "γ", parts.gamma, parts.gammaText),
    );
    for (const view of VIEWS) {
      const image = el("img", { class: "inspection-image", alt: VIEW_TITLES[view], "data-testid": `view-${view}` });
      if (view === "combined") image.addEventListener("click", (event) => this.pickAt(image, event));
      this.images.set(view, image);
    }
    const legend = el("span", { class: "legend-swatches", "data-testid": "combined-legend" },
      el("span", { class: "legend-entry" }, el("span", { class: "swatch", style: "background:#39e75f" }), "consistent"),
      el("span", { class: "legend-entry" }, el("span", { class: "swatch", style: "background:#ff2d2d" }), "suspect (numbered)"),
      el("span", { class: "legend-entry" }, el("span", { class: "swatch", style: "background:#ffffff" }), "selected"));
    parts.views.replaceChildren(
      ...VIEWS.map((view) => el("figure", { class: `inspection-view ${view}` },
        el("figcaption", {}, VIEW_TITLES[view], view === "combined" ? legend : null), this.images.get(view)!)),
    );
    const decisionButtons = (whole: boolean) => DECISIONS.map(({ decision, label, key }) => {
      const b = el("button", {
        type: "button", "data-testid": `${whole ? "item" : "instance"}-${decision}`,
        title: whole ? `${label} for the whole item (Shift+${key})` : `${label} for the selected instance (${key})`,
      }, label);
      b.addEventListener("click", () => decide(decision, whole));
      return b;
    });
    parts.itemButtons.push(...decisionButtons(true));
    parts.instanceButtons.push(...decisionButtons(false));
    byId("inspection-actions").replaceChildren(
      el("div", { class: "group" }, el("span", { class: "group-label" }, "Item"), ...parts.itemButtons),
      el("div", { class: "group" }, parts.instanceLabel, ...parts.instanceButtons),
      el("div", { class: "group info" }, parts.itemInfo),
      el("div", { class: "group end" }, button("?", "inspection-help", help, "Keyboard shortcuts (?)")),
    );
    this.render();
  }

  get weights(): Weights {
    return { alpha: this.alpha, gamma: this.gamma };
  }

  /** The state the URL keeps. */
  get state(): ViewState {
    return {
      mode: "inspection", inspection: this.run?.id ?? null, item: this.item?.id ?? null,
      instance: this.instance, alpha: this.run ? this.alpha : null, gamma: this.run ? this.gamma : null,
    };
  }

  /** Opens the run, item and instance `state` names (the newest run and its top item by default). */
  async open(state: ViewState): Promise<void> {
    try {
      this.runs = [...await track(this.api.inspections())].sort((a, b) => b.id - a.id);
    } catch (error) {
      notify(`Cannot list the inspection runs: ${describe(error)}`, "error");
      return;
    }
    this.renderRuns();
    const run = this.runs.find((r) => r.id === state.inspection) ?? this.runs[0] ?? null;
    if (!run) {
      this.run = null;
      this.items = [];
      this.item = null;
      this.render();
      notify("No inspection runs on this site yet: start one with `pathloop quality inspect` or an inspect job");
      return;
    }
    if (state.inspection !== null && run.id !== state.inspection) {
      notify(`Inspection ${state.inspection} does not exist; showing the newest run`, "warn");
    }
    await this.selectRun(run.id, state);
  }

  /** Opens run `runId` at `state`'s α, γ and item (the run's defaults and top item otherwise). */
  async selectRun(runId: number, state: ViewState | null = null): Promise<void> {
    const run = this.runs.find((r) => r.id === runId);
    if (!run) return;
    this.run = run;
    this.alpha = state?.alpha ?? run.alpha;
    this.gamma = state?.gamma ?? run.gamma;
    this.item = null;
    this.instance = null;
    this.showWeights();
    this.renderRuns();
    if (await this.loadItems()) {
      const item = pickItem(this.items, state?.item ?? null);
      if (item) await this.selectItem(item.id, state?.instance ?? null);
      else notify(`Inspection "${run.name}" has no items`, "warn");
    }
    this.render();
    this.onChange();
  }

  /** Opens an item: its instances and its three views. */
  async selectItem(itemId: number, instance: number | null = null): Promise<void> {
    if (!this.run) return;
    const ticket = this.itemRequests.begin();
    try {
      const detail = await track(this.api.inspectionItem(this.run.id, itemId, this.weights));
      if (!this.itemRequests.current(ticket)) return;
      this.item = detail;
      this.instance = detail.instances.some((i) => i.number === instance) ? instance : null;
      this.render();
      this.onChange();
      await this.loadViews(VIEWS);
      const rank = this.items.findIndex((i) => i.id === itemId) + 1;
      notify(`#${rank} ${detail.name}: overall ${detail.overall.toFixed(3)}, `
        + `${detail.n_suspect} of ${detail.n_instances} instances suspect`);
    } catch (error) {
      notify(`Cannot open inspection item ${itemId}: ${describe(error)}`, "error");
    }
  }

  /** Selects an instance (null: the item as a whole); the combined view shows it white. */
  selectInstance(number: number | null): void {
    if (!this.item || this.instance === number) return;
    this.instance = number;
    this.render();
    this.onChange();
    void this.loadViews(["combined"]);
  }

  stepItem(step: number): Promise<void> {
    const next = stepItem(this.items, this.item?.id ?? null, step);
    if (!next || next.id === this.item?.id) return Promise.resolve();
    return this.selectItem(next.id);
  }

  stepInstance(step: number): void {
    if (!this.item) return;
    this.selectInstance(stepInstance(orderInstances(this.item.instances), this.instance, step));
  }

  /** Sets α and γ (the sliders do it live) and re-scores once they rest. */
  setWeights(alpha: number, gamma: number): Promise<void> {
    this.alpha = alpha;
    this.gamma = gamma;
    this.showWeights();
    this.weightsChanged.cancel();
    return this.rescore();
  }

  /**
   * Stores a decision for the selected instance (`whole`: for the item) as a new correction
   * version based on the item's version as last loaded; shows the stored version.
   */
  async decide(decision: InspectionDecision, whole: boolean): Promise<void> {
    const { run, item } = this;
    if (!run || !item) {
      notify("Open an inspection item first", "warn");
      return;
    }
    const instance = whole ? null : this.instance;
    if (!whole && instance === null) {
      notify("Select an instance first (click it, or ] / [), or decide for the whole item", "warn");
      return;
    }
    const what = instance === null ? item.name : `instance ${instance} of ${item.name}`;
    try {
      const stored = await track(this.api.decide(run.id, item.id, decision, instance, item.version));
      await this.rescore();
      notify(`${decision} for ${what}: stored as version v${stored.version}`, "ok");
    } catch (error) {
      const stale = error instanceof ApiError && error.conflict;
      notify(`Cannot store ${decision} for ${what}: ${describe(error)}`
        + (stale ? " (someone decided on this item meanwhile: reload the page to see it)" : ""), "error");
    }
  }

  /** The items, the open item and its views again at the current α and γ. */
  private async rescore(): Promise<void> {
    try {
      if (!(await this.loadItems())) return;
      if (this.item) await this.selectItem(this.item.id, this.instance);
      this.onChange();
    } finally {
      this.settling?.();
      this.settling = null;
    }
  }

  /** Loads the run's items at the current weights; false when it failed or was overtaken. */
  private async loadItems(): Promise<boolean> {
    const run = this.run;
    if (!run) return false;
    const ticket = this.listRequests.begin();
    try {
      const items = await track(this.api.inspectionItems(run.id, this.weights));
      if (!this.listRequests.current(ticket) || this.run !== run) return false;
      this.items = orderItems(items);
      this.render();
      return true;
    } catch (error) {
      if (this.listRequests.current(ticket)) notify(`Cannot load the items of "${run.name}": ${describe(error)}`, "error");
      return false;
    }
  }

  /** Fetches views of the open item as PNGs; an overtaken request's image is dropped. */
  private async loadViews(views: InspectionView[]): Promise<void> {
    const { run, item } = this;
    if (!run || !item) return;
    const weights = `${formatWeight(this.alpha)}:${formatWeight(this.gamma)}`;
    await Promise.all(views.map(async (view) => {
      const latest = this.viewRequests.get(view)!;
      const ticket = latest.begin();
      const selected = view === "combined" ? this.instance : null;
      try {
        const blob = await track(this.api.inspectionView(run.id, item.id, view, this.weights, selected));
        if (latest.current(ticket)) await show(this.images.get(view)!, blob, `${item.id}:${weights}:${selected ?? ""}`);
      } catch (error) {
        if (latest.current(ticket)) notify(`Cannot load the ${view} view of ${item.name}: ${describe(error)}`, "error");
      }
    }));
  }

  /** Counts a slider's wait for rest as busy, so `<body data-busy>` says when all settled. */
  private holdBusy(): void {
    if (this.settling) return;
    void track(new Promise<void>((resolve) => {
      this.settling = resolve;
    }));
  }

  /** A click on the combined view selects the smallest instance whose box holds the point. */
  private pickAt(image: HTMLImageElement, event: MouseEvent): void {
    const item = this.item;
    if (!item || !image.naturalWidth) return;
    // The picture is letterboxed in its element (object-fit: contain); boxes are in its pixels.
    const rect = image.getBoundingClientRect();
    const scale = Math.min(rect.width / image.naturalWidth, rect.height / image.naturalHeight);
    const x = (event.clientX - rect.left - (rect.width - image.naturalWidth * scale) / 2) / scale;
    const y = (event.clientY - rect.top - (rect.height - image.naturalHeight * scale) / 2) / scale;
    this.selectInstance(instanceAt(item.instances, x, y));
  }

  private showWeights(): void {
    const { parts } = this;
    parts.alpha.value = String(this.alpha);
    parts.gamma.value = String(this.gamma);
    parts.alphaText.value = this.alpha.toFixed(2);
    parts.gammaText.value = this.gamma.toFixed(2);
  }

  private renderRuns(): void {
    this.parts.runs.replaceChildren(...this.runs.map((run) => el("option", {
      value: run.id, selected: run.id === this.run?.id,
    }, `${run.name} · ${formatTime(run.created_at)} · ${run.n_items} ${run.source === "image-set" ? "images" : "regions"}`)));
    this.parts.runs.disabled = this.runs.length === 0;
  }

  render(): void {
    const { parts, item } = this;
    const suspect = this.items.filter((i) => i.n_suspect > 0).length;
    parts.counts.textContent = this.run ? `${this.items.length} items · ${suspect} with suspect instances` : "";
    parts.items.replaceChildren(...this.items.map((entry, i) => this.itemRow(entry, i + 1)));
    if (this.run && this.items.length === 0) parts.items.append(el("li", { class: "empty" }, "This run has no items."));
    const instances = item ? orderInstances(item.instances) : [];
    parts.instanceCounts.textContent = item ? `${item.n_suspect} suspect of ${item.n_instances}` : "";
    parts.instances.replaceChildren(...instances.map((instance) => this.instanceRow(instance)));
    if (item && instances.length === 0) parts.instances.append(el("li", { class: "empty" }, "No instances in this item."));
    for (const b of parts.itemButtons) b.disabled = !item;
    for (const b of parts.instanceButtons) b.disabled = this.instance === null;
    parts.instanceLabel.textContent = this.instance === null ? "Instance" : `Instance ${this.instance}`;
    parts.itemInfo.textContent = item
      ? `${item.name} · ${item.box.width}×${item.box.height} px · overall ${item.overall.toFixed(3)}`
        + `${item.decision ? ` · ${item.decision}` : ""}${item.version ? ` · v${item.version}` : ""}`
      : "";
    document.body.dataset.inspectionItem = item ? String(item.id) : "";
    parts.items.querySelector(".current")?.scrollIntoView({ block: "nearest" });
  }

  private itemRow(item: InspectionItem, rank: number): HTMLElement {
    const row = el("li", {
      class: `inspection-item${item.id === this.item?.id ? " current" : ""}`,
      "data-testid": "inspection-item", "data-item-id": item.id, "data-overall": item.overall, tabindex: 0,
      title: `${item.name}: ${item.slide_name} at (${item.box.x}, ${item.box.y}), ${item.box.width}×${item.box.height} px, `
        + `${item.mpp} µm/px; ${item.n_suspect} of ${item.n_instances} instances suspect`
        + `${item.version ? `; correction v${item.version}` : ""}`,
    },
      el("span", { class: "rank" }, `#${rank}`),
      el("span", { class: "score", "data-testid": "item-score" }, item.overall.toFixed(3)),
      el("span", { class: "slide-name" }, item.name),
      el("span", { class: "suspect-count" }, `${item.n_suspect}/${item.n_instances}`),
      item.decision ? el("span", { class: `badge decided`, "data-testid": "item-decision" }, item.decision) : null,
    );
    row.addEventListener("click", () => void this.selectItem(item.id));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.stopPropagation();
        void this.selectItem(item.id);
      }
    });
    return row;
  }

  private instanceRow(instance: InspectionInstance): HTMLElement {
    const row = el("li", {
      class: `inspection-instance${instance.suspect ? " suspect" : ""}${instance.number === this.instance ? " current" : ""}`,
      "data-testid": "inspection-instance", "data-number": instance.number, "data-state": instance.state,
      "data-suspect": String(instance.suspect), tabindex: 0,
      title: `IoU ${instance.iou.toFixed(2)}, ${instance.area} px, certainty ${instance.certainty.toFixed(2)}`
        + `${instance.suspect ? ` (suspect: score ≥ ${SUSPECT})` : ""}`,
    },
      el("span", { class: "number" }, String(instance.number)),
      el("span", { class: `badge state ${instance.state}` }, instance.state),
      el("span", { class: "score" }, instance.score.toFixed(3)),
      instance.decision ? el("span", { class: "badge decided" }, instance.decision) : null,
    );
    const select = () => this.selectInstance(instance.number === this.instance ? null : instance.number);
    row.addEventListener("click", select);
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.stopPropagation();
        select();
      }
    });
    return row;
  }
}

/** Shows a PNG in `image` (its old object URL freed) and marks it with what it shows. */
function show(image: HTMLImageElement, blob: Blob, key: string): Promise<void> {
  const old = image.src;
  const url = URL.createObjectURL(blob);
  return new Promise((resolve) => {
    const done = () => {
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      image.dataset.shows = key;
      resolve();
    };
    image.onload = done;
    image.onerror = () => {
      notify(`The server sent a view that is not a readable PNG (${blob.type || "no type"})`, "error");
      done();
    };
    image.src = url;
  });
}
