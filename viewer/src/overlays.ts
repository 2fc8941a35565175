/**
 * A slide's overlays (tissue, prediction, uncertainty, annotation, corrections): each is a
 * tiled image over the slide with a visibility toggle, an opacity slider and its legend.
 * Hidden overlays stay in the world at opacity 0, which loads no tiles.
 */
import type OpenSeadragon from "openseadragon";
import type { OverlayInfo, OverlayKind, SlideDetail } from "./api/types";
import { el } from "./dom";
import { legendElement } from "./legend";
import type { SlideView } from "./slide-view";
import { deepZoomSource } from "./tiles";

interface Shown {
  info: OverlayInfo;
  item: OpenSeadragon.TiledImage;
  toggle: HTMLInputElement;
}

interface Choice {
  visible: boolean;
  opacity: number;
}

const DEFAULTS: Partial<Record<OverlayKind, Choice>> = {
  uncertainty: { visible: true, opacity: 0.5 },
  prediction: { visible: false, opacity: 0.4 },
  corrections: { visible: true, opacity: 0.5 },
};
const STORAGE_KEY = "pathloop-overlays";

export class OverlayLayers {
  private shown = new Map<OverlayKind, Shown>();
  private readonly choices: Map<OverlayKind, Choice>;

  constructor(private readonly view: SlideView, private readonly panel: HTMLElement) {
    this.choices = new Map(Object.entries(readChoices()) as [OverlayKind, Choice][]);
  }

  /** Adds the open slide's overlays (call after `SlideView.open`). */
  async show(slide: SlideDetail): Promise<void> {
    this.shown.clear();
    this.panel.replaceChildren();
    if (slide.overlays.length === 0) {
      this.panel.append(el("p", { class: "empty" }, "No overlays yet: run predict for this slide."));
    }
    for (const info of slide.overlays) await this.add(info);
  }

  /** Swaps in the overlays whose content version changed (after a save, a job). */
  async refresh(slide: SlideDetail): Promise<void> {
    const kinds = new Set(slide.overlays.map((info) => info.kind));
    const stale = [...this.shown.keys()].some((kind) => !kinds.has(kind))
      || slide.overlays.some((info) => !this.shown.has(info.kind));
    if (stale) {
      for (const { item } of this.shown.values()) this.view.removeLayer(item);
      await this.show(slide);
      return;
    }
    for (const info of slide.overlays) {
      const current = this.shown.get(info.kind);
      if (!current || current.info.version === info.version) continue;
      const index = this.view.viewer.world.getIndexOfItem(current.item);
      const item = await this.view.addLayer(this.source(info), current.item.getOpacity(), index);
      this.view.removeLayer(current.item);
      this.shown.set(info.kind, { ...current, info, item });
    }
  }

  /** Shows or hides one overlay (the `U` key toggles the uncertainty). */
  toggle(kind: OverlayKind, visible?: boolean): void {
    const shown = this.shown.get(kind);
    if (!shown) return;
    const choice = this.choice(kind);
    choice.visible = visible ?? !choice.visible;
    shown.toggle.checked = choice.visible;
    this.apply(kind);
  }

  private async add(info: OverlayInfo): Promise<void> {
    const choice = this.choice(info.kind);
    const item = await this.view.addLayer(this.source(info), choice.visible ? choice.opacity : 0);
    const id = `overlay-${info.kind}`;
    const toggle = el("input", { type: "checkbox", id, "data-testid": `overlay-toggle-${info.kind}` });
    toggle.checked = choice.visible;
    toggle.addEventListener("change", () => this.toggle(info.kind, toggle.checked));
    const slider = el("input", {
      type: "range", min: 0, max: 100, step: 5, value: Math.round(choice.opacity * 100),
      "data-testid": `overlay-opacity-${info.kind}`, title: `${info.title} opacity`,
      "aria-label": `${info.title} opacity`,
    });
    slider.addEventListener("input", () => {
      choice.opacity = Number(slider.value) / 100;
      this.apply(info.kind);
    });
    this.panel.append(
      el("div", { class: "overlay-row", "data-kind": info.kind },
        el("label", { for: id }, toggle, info.title),
        slider,
        legendElement(info.legend, `legend-${info.kind}`)),
    );
    this.shown.set(info.kind, { info, item, toggle });
  }

  private source(info: OverlayInfo) {
    const grid = this.view.slide?.deepzoom;
    if (!grid) throw new Error("no slide is open");
    return deepZoomSource(grid, info.url_template, info.version);
  }

  private choice(kind: OverlayKind): Choice {
    let choice = this.choices.get(kind);
    if (!choice) {
      choice = { ...(DEFAULTS[kind] ?? { visible: false, opacity: 0.5 }) };
      this.choices.set(kind, choice);
    }
    return choice;
  }

  private apply(kind: OverlayKind): void {
    const shown = this.shown.get(kind);
    const choice = this.choice(kind);
    shown?.item.setOpacity(choice.visible ? choice.opacity : 0);
    saveChoices(Object.fromEntries(this.choices));
  }
}

function readChoices(): Record<string, Choice> {
  try {
    return JSON.parse(window.localStorage.getItem(STORAGE_KEY) ?? "{}") as Record<string, Choice>;
  } catch {
    return {};
  }
}

function saveChoices(choices: Record<string, Choice>): void {
  try {
    window.localStorage.setItem(STORAGE_KEY, JSON.stringify(choices));
  } catch {
    // private mode or a full storage: the choices just do not survive a reload
  }
}
