/**
 * The worklist: a slide's patches, most uncertain first, with their status, who holds them
 * and their latest correction version; and which pending patch comes next.
 */
import type { SiteApi } from "./api/client";
import type { WorklistItem } from "./api/types";
import { el, formatTime } from "./dom";

/**
 * The next pending patch to correct: the first pending one after `currentId` in worklist
 * order (wrapping round), skipping patches someone other than `me` has claimed.
 */
export function pickNext(items: WorklistItem[], currentId: number | null, me: string | null): WorklistItem | null {
  const free = (item: WorklistItem) =>
    item.status === "pending" && item.id !== currentId && (!item.claimed_by || item.claimed_by === me);
  const at = items.findIndex((item) => item.id === currentId);
  const ordered = at < 0 ? items : [...items.slice(at + 1), ...items.slice(0, at)];
  return ordered.find(free) ?? null;
}

export class WorklistPanel {
  items: WorklistItem[] = [];
  slideId: number | null = null;
  currentId: number | null = null;
  onSelect: (item: WorklistItem) => void = () => undefined;

  constructor(
    private readonly api: SiteApi,
    private readonly list: HTMLElement,
    private readonly counts: HTMLElement,
  ) {}

  /** Loads the worklist of one slide (or of every slide when null) and shows it. */
  async load(slideId: number | null): Promise<WorklistItem[]> {
    this.slideId = slideId;
    this.items = await this.api.worklist(slideId ?? undefined);
    this.render();
    return this.items;
  }

  reload(): Promise<WorklistItem[]> {
    return this.load(this.slideId);
  }

  /** Replaces one item after an action on it (claim, skip, save). */
  update(item: WorklistItem): void {
    const at = this.items.findIndex((known) => known.id === item.id);
    if (at >= 0) this.items[at] = item;
    this.render();
  }

  setCurrent(patchId: number | null): void {
    this.currentId = patchId;
    this.render();
    this.list.querySelector(".current")?.scrollIntoView({ block: "nearest" });
  }

  render(): void {
    const tally = { pending: 0, corrected: 0, skipped: 0 };
    for (const item of this.items) tally[item.status]++;
    this.counts.textContent = `${tally.pending} pending · ${tally.corrected} done · ${tally.skipped} skipped`;
    this.list.replaceChildren(...this.items.map((item) => this.row(item)));
    if (this.items.length === 0) {
      this.list.append(el("li", { class: "empty" }, "No ranked patches: run rank for this slide."));
    }
  }

  private row(item: WorklistItem): HTMLElement {
    const claim = item.claimed_by
      ? el("span", { class: "claimed", title: `claimed ${formatTime(item.claimed_at)}` }, `✎ ${item.claimed_by}`)
      : null;
    const row = el("li", {
      class: `worklist-item${item.id === this.currentId ? " current" : ""}`,
      "data-testid": "worklist-item",
      "data-patch-id": item.id,
      "data-status": item.status,
      tabindex: 0,
      title: `patch ${item.id} at (${item.x}, ${item.y}), ${item.width}×${item.height} px; `
        + `uncertainty mean ${item.score_mean.toFixed(3)}, sum ${item.score_sum.toFixed(1)}`,
    },
      el("span", { class: "rank" }, `#${item.rank}`),
      el("span", { class: "score" }, item.score_mean.toFixed(3)),
      el("span", { class: `badge ${item.status}`, "data-testid": "status-badge" }, item.status),
      el("span", { class: "version", "data-testid": "item-version" }, item.version ? `v${item.version}` : ""),
      claim,
    );
    const select = () => this.onSelect(item);
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
