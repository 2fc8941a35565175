/**
 * The compact toolbar over the view: next patch, the tools with brush size and label, the
 * patch actions, help. Buttons perform the same actions as the shortcuts (their titles
 * name the keys) and reflect the editor's state.
 */
import type { LabelInfo } from "./api/types";
import { button, el } from "./dom";
import type { Editor } from "./editor/editor";
import { MAX_SIZE, MIN_SIZE, TOOLS, type Tool } from "./editor/tools";
import type { Action } from "./shortcuts";

const TOOL_LABELS: Record<Tool, [string, string]> = {
  pan: ["Pan", "Pan (H; or hold Space)"],
  brush: ["Brush", "Brush: paints the chosen label (B)"],
  eraser: ["Eraser", "Eraser: paints background (E)"],
  polygon: ["Polygon", "Polygon fill: click vertices, double-click or Enter fills, Esc cancels (P)"],
};

export class Toolbar {
  private readonly tools = new Map<Tool, HTMLButtonElement>();
  private readonly size: HTMLInputElement;
  private readonly sizeText: HTMLOutputElement;
  private readonly label: HTMLSelectElement;
  private readonly swatch: HTMLSpanElement;
  private readonly patchButtons: HTMLButtonElement[] = [];
  private readonly undo: HTMLButtonElement;
  private readonly redo: HTMLButtonElement;
  private readonly save: HTMLButtonElement;

  constructor(root: HTMLElement, private readonly editor: Editor, perform: (action: Action) => void) {
    const act = (label: string, action: Action, title: string, testId: string = action) =>
      button(label, testId, () => perform(action), title);
    const next = act("Next ▸", "next", "Next uncertain patch: opens its slide, zooms, claims it (N)", "next-patch");
    next.classList.add("primary");

    for (const tool of TOOLS) {
      const [text, title] = TOOL_LABELS[tool];
      const b = button(text, `tool-${tool}`, () => editor.tools.setTool(tool), title);
      this.tools.set(tool, b);
    }
    this.size = el("input", {
      type: "range", min: MIN_SIZE, max: MAX_SIZE, value: editor.tools.size, "data-testid": "brush-size",
      title: "Brush size in mask pixels ([ and ])", "aria-label": "Brush size",
    });
    this.size.addEventListener("input", () => editor.tools.setSize(Number(this.size.value)));
    this.sizeText = el("output", { class: "size-text", "data-testid": "brush-size-value" });
    this.label = el("select", { "data-testid": "label-select", title: "Label the brush paints (1 … 9)", "aria-label": "Label" });
    this.label.addEventListener("change", () => {
      editor.tools.setLabel(Number(this.label.value));
      this.label.blur();
    });
    this.swatch = el("span", { class: "swatch" });

    this.undo = act("↶", "undo", "Undo the last local edit (Ctrl+Z)");
    this.redo = act("↷", "redo", "Redo (Ctrl+Shift+Z or Ctrl+Y)");
    this.save = act("Save", "save", "Save a new version of this patch (Ctrl+S)");
    this.save.classList.add("primary");
    const patchActions = [
      act("Clear", "clear", "Clear the mask to re-annotate (C)"),
      act("Accept pred.", "accept", "Accept the prediction as this patch's correction (A)"),
      act("Keep ann.", "keep", "Keep the existing annotation (K)"),
      act("Skip", "skip", "Skip this patch (Shift+S)"),
    ];
    this.patchButtons.push(...patchActions, this.save);

    root.replaceChildren(
      el("div", { class: "group" }, next),
      el("div", { class: "group tools" }, ...this.tools.values()),
      el("div", { class: "group" }, el("label", { class: "size" }, "Size", this.size, this.sizeText)),
      el("div", { class: "group" }, this.swatch, this.label),
      el("div", { class: "group" }, this.undo, this.redo),
      el("div", { class: "group" }, ...patchActions),
      el("div", { class: "group" }, this.save),
      el("div", { class: "group end" }, act("?", "help", "Keyboard shortcuts (?)", "help-button")),
    );
    this.sync();
  }

  setLabels(labels: LabelInfo[]): void {
    const painted = labels.filter((label) => label.value > 0);
    this.label.replaceChildren(...painted.map((label, i) =>
      el("option", { value: label.value }, `${i + 1} · ${label.name}`)));
    this.sync();
  }

  /** Shows the editor's current tool, size, label and which actions apply. */
  sync(): void {
    const { tools, session } = this.editor;
    for (const [tool, b] of this.tools) {
      b.classList.toggle("active", tool === tools.tool);
      b.setAttribute("aria-pressed", String(tool === tools.tool));
    }
    this.size.value = String(tools.size);
    this.sizeText.value = `${tools.size} px`;
    this.label.value = String(tools.label);
    const label = this.editor.labels.find((l) => l.value === tools.label);
    this.swatch.style.background = label?.color ?? "transparent";
    for (const b of this.patchButtons) b.disabled = !session;
    this.undo.disabled = !session?.model.history.canUndo;
    this.redo.disabled = !session?.model.history.canRedo;
    this.save.classList.toggle("dirty", this.editor.dirty);
  }
}
