/**
 * Keyboard shortcuts: one table, read by the key handler and by the "?" help overlay.
 *
 * A combination is written as shown to the user: "Ctrl+Shift+Z", "[", "Shift+S", "?".
 * Ctrl also matches ⌘ on a Mac. Letters are matched by physical key too, so Alt+Z works
 * where Alt turns Z into another character. For punctuation ("?", "[", "+") Shift is
 * whatever the layout needs.
 *
 * Each mode has its own keys: the worklist mode's groups (Worklist, Tools, Patch, View) and
 * the inspection mode's (Inspection) share only the General ones, and the letters mean the
 * same in both where they can (N next, A accept the prediction, K keep the annotation,
 * C re-annotate).
 */
import { el } from "./dom";
import type { Mode } from "./inspection-state";

export const ACTIONS = [
  "next", "help", "cancel", "polygon-close",
  "tool-pan", "tool-brush", "tool-eraser", "tool-polygon", "size-down", "size-up",
  "label-1", "label-2", "label-3", "label-4", "label-5", "label-6", "label-7", "label-8", "label-9",
  "undo", "redo", "save", "accept", "keep", "clear", "skip", "undo-save",
  "toggle-mask", "toggle-uncertainty", "zoom-in", "zoom-out", "home", "zoom-patch",
  "pan-left", "pan-right", "pan-up", "pan-down",
  "mode", "item-next", "item-prev", "instance-next", "instance-prev", "instance-none",
  "decide-keep", "decide-accept", "decide-reannotate", "item-keep", "item-accept", "item-reannotate",
] as const;
export type Action = (typeof ACTIONS)[number];

export interface Shortcut {
  keys: string[];
  action: Action;
  description: string;
  group: Group;
}

export type Group = "General" | "Worklist" | "Tools" | "Patch" | "View" | "Inspection";

/** Whether a group's keys work in `mode`: General in both, Inspection in its own only. */
export function inMode(group: Group, mode: Mode): boolean {
  return group === "General" || (group === "Inspection") === (mode === "inspection");
}

export const SHORTCUTS: Shortcut[] = [
  { group: "General", keys: ["I"], action: "mode", description: "Switch between the worklist and the inspection" },
  { group: "General", keys: ["?"], action: "help", description: "This help" },
  { group: "Worklist", keys: ["N"], action: "next", description: "Next uncertain patch (opens, zooms, claims)" },
  { group: "Worklist", keys: ["Shift+S"], action: "skip", description: "Skip this patch" },
  { group: "Tools", keys: ["H"], action: "tool-pan", description: "Pan tool" },
  { group: "Tools", keys: ["B"], action: "tool-brush", description: "Brush (paints the chosen label)" },
  { group: "Tools", keys: ["E"], action: "tool-eraser", description: "Eraser (paints background)" },
  { group: "Tools", keys: ["P"], action: "tool-polygon", description: "Polygon fill: click vertices" },
  { group: "Tools", keys: ["Enter"], action: "polygon-close", description: "Close and fill the polygon (or double-click)" },
  { group: "Tools", keys: ["Escape"], action: "cancel", description: "Cancel the polygon / close this help" },
  { group: "Tools", keys: ["["], action: "size-down", description: "Smaller brush" },
  { group: "Tools", keys: ["]"], action: "size-up", description: "Larger brush" },
  { group: "Tools", keys: ["1", "…", "9"], action: "label-1", description: "Choose label 1 … 9 (in the label list's order)" },
  { group: "Tools", keys: ["Space"], action: "tool-pan", description: "Hold to pan with any tool" },
  { group: "Patch", keys: ["Ctrl+Z"], action: "undo", description: "Undo the last local edit" },
  { group: "Patch", keys: ["Ctrl+Shift+Z", "Ctrl+Y"], action: "redo", description: "Redo" },
  { group: "Patch", keys: ["Ctrl+S"], action: "save", description: "Save a new version" },
  { group: "Patch", keys: ["A"], action: "accept", description: "Accept the prediction (saves a version)" },
  { group: "Patch", keys: ["K"], action: "keep", description: "Keep the annotation (saves a version)" },
  { group: "Patch", keys: ["C"], action: "clear", description: "Clear the mask to re-annotate" },
  { group: "Patch", keys: ["Alt+Z"], action: "undo-save", description: "Undo the last save (a new version)" },
  { group: "View", keys: ["M"], action: "toggle-mask", description: "Show or hide the editing layer" },
  { group: "View", keys: ["U"], action: "toggle-uncertainty", description: "Show or hide the uncertainty" },
  { group: "View", keys: ["Z"], action: "zoom-patch", description: "Zoom to the patch" },
  { group: "View", keys: ["+", "="], action: "zoom-in", description: "Zoom in (or the wheel)" },
  { group: "View", keys: ["-"], action: "zoom-out", description: "Zoom out" },
  { group: "View", keys: ["0"], action: "home", description: "Whole slide" },
  { group: "View", keys: ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"], action: "pan-left", description: "Pan" },
  { group: "Inspection", keys: ["N"], action: "item-next", description: "Next image or region (less suspect)" },
  { group: "Inspection", keys: ["Shift+N"], action: "item-prev", description: "Previous image or region (more suspect)" },
  { group: "Inspection", keys: ["]"], action: "instance-next", description: "Next instance (starts at the most suspect)" },
  { group: "Inspection", keys: ["["], action: "instance-prev", description: "Previous instance" },
  { group: "Inspection", keys: ["Escape"], action: "instance-none", description: "No instance: decide for the whole item / close this help" },
  { group: "Inspection", keys: ["A"], action: "decide-accept", description: "Accept the prediction (the selected instance, else the item)" },
  { group: "Inspection", keys: ["K"], action: "decide-keep", description: "Keep the annotation (the selected instance, else the item)" },
  { group: "Inspection", keys: ["C"], action: "decide-reannotate", description: "Mark for re-annotation (the selected instance, else the item)" },
  { group: "Inspection", keys: ["Shift+A"], action: "item-accept", description: "Accept the prediction for the whole item" },
  { group: "Inspection", keys: ["Shift+K"], action: "item-keep", description: "Keep the annotation for the whole item" },
  { group: "Inspection", keys: ["Shift+C"], action: "item-reannotate", description: "Mark the whole item for re-annotation" },
];

/** The key table the handler uses in each mode: the help's rows plus the keys they stand for. */
const BINDINGS: Record<Mode, [string, Action][]> = {
  worklist: [
    ...SHORTCUTS.filter((s) => inMode(s.group, "worklist"))
      .filter((s) => s.keys[0] !== "1" && s.keys[0] !== "ArrowLeft" && s.keys[0] !== "Space")
      .flatMap((s) => s.keys.map((key): [string, Action] => [key, s.action])),
    ...Array.from({ length: 9 }, (_, i): [string, Action] => [String(i + 1), `label-${i + 1}` as Action]),
    ["ArrowLeft", "pan-left"], ["ArrowRight", "pan-right"], ["ArrowUp", "pan-up"], ["ArrowDown", "pan-down"],
  ],
  inspection: SHORTCUTS.filter((s) => inMode(s.group, "inspection"))
    .flatMap((s) => s.keys.map((key): [string, Action] => [key, s.action])),
};

export type KeyLike = Pick<KeyboardEvent, "key" | "code" | "ctrlKey" | "metaKey" | "shiftKey" | "altKey">;

export function matches(combo: string, event: KeyLike): boolean {
  const parts = combo.split("+");
  const key = combo.endsWith("++") || combo === "+" ? "+" : parts[parts.length - 1];
  const mods = new Set(parts.slice(0, key === "+" && combo !== "+" ? -2 : -1));
  const ctrl = event.ctrlKey || event.metaKey;
  if (mods.has("Ctrl") !== ctrl || mods.has("Alt") !== event.altKey) return false;
  if (/^[A-Za-z]$/.test(key)) {
    if (mods.has("Shift") !== event.shiftKey) return false;
    return event.key.toLowerCase() === key.toLowerCase() || event.code === `Key${key.toUpperCase()}`;
  }
  if (/^[0-9]$/.test(key)) {
    return !event.shiftKey && (event.key === key || event.code === `Digit${key}`);
  }
  if (key.length > 1) {
    // named keys: Enter, Escape, ArrowLeft …
    return mods.has("Shift") === event.shiftKey && event.key === key;
  }
  return event.key === key; // punctuation: Shift as the layout needs
}

export function actionFor(event: KeyLike, mode: Mode = "worklist"): Action | null {
  for (const [combo, action] of BINDINGS[mode]) if (matches(combo, event)) return action;
  return null;
}

/** Whether keys typed here belong to the control (text fields, selects), not to shortcuts. */
export function typingInto(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (target instanceof HTMLInputElement) {
    return !["checkbox", "radio", "range", "button", "submit"].includes(target.type);
  }
  return false;
}

const SHOWN_AS: Record<string, string> = { ArrowLeft: "←", ArrowRight: "→", ArrowUp: "↑", ArrowDown: "↓", Escape: "Esc" };

/** The "?" help: the shortcuts of `mode`. */
export function helpOverlay(mode: Mode = "worklist"): HTMLElement {
  const groups = [...new Set(SHORTCUTS.filter((s) => inMode(s.group, mode)).map((s) => s.group))];
  const kbd = (keys: string[]) =>
    keys.flatMap((key, i) => [
      i ? (key === "…" || keys[i - 1] === "…" ? " " : " / ") : "",
      key === "…" ? "…" : el("kbd", {}, SHOWN_AS[key] ?? key),
    ]);
  return el("div", { class: "help", role: "dialog", "aria-label": "Keyboard shortcuts", "data-testid": "help" },
    el("h2", {}, "Keyboard shortcuts"),
    el("div", { class: "help-groups" },
      ...groups.map((group) => el("section", {},
        el("h3", {}, group),
        el("table", {}, ...SHORTCUTS.filter((s) => s.group === group).map((s) =>
          el("tr", {}, el("td", {}, ...kbd(s.keys)), el("td", {}, s.description))))))),
    el("p", { class: "help-foot" }, mode === "inspection"
      ? "Combined view: green consistent, red and numbered suspect, white the selected instance. Click an instance to select it."
      : "While a drawing tool is active, dragging paints; the wheel zooms; hold Space to pan."));
}
