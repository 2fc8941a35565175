/**
 * Keyboard shortcuts: one table, read by the key handler and by the "?" help overlay.
 *
 * A combination is written as shown to the user: "Ctrl+Shift+Z", "[", "Shift+S", "?".
 * Ctrl also matches ⌘ on a Mac. Letters are matched by physical key too, so Alt+Z works
 * where Alt turns Z into another character. For punctuation ("?", "[", "+") Shift is
 * whatever the layout needs.
 */
import { el } from "./dom";

export const ACTIONS = [
  "next", "help", "cancel", "polygon-close",
  "tool-pan", "tool-brush", "tool-eraser", "tool-polygon", "size-down", "size-up",
  "label-1", "label-2", "label-3", "label-4", "label-5", "label-6", "label-7", "label-8", "label-9",
  "undo", "redo", "save", "accept", "keep", "clear", "skip", "undo-save",
  "toggle-mask", "toggle-uncertainty", "zoom-in", "zoom-out", "home", "zoom-patch",
  "pan-left", "pan-right", "pan-up", "pan-down",
] as const;
export type Action = (typeof ACTIONS)[number];

export interface Shortcut {
  keys: string[];
  action: Action;
  description: string;
  group: "Worklist" | "Tools" | "Patch" | "View";
}

export const SHORTCUTS: Shortcut[] = [
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
  { group: "View", keys: ["?"], action: "help", description: "This help" },
];

/** The key table the handler uses: the help's rows plus the keys they stand for. */
const BINDINGS: [string, Action][] = [
  ...SHORTCUTS.filter((s) => s.keys[0] !== "1" && s.keys[0] !== "ArrowLeft" && s.keys[0] !== "Space")
    .flatMap((s) => s.keys.map((key): [string, Action] => [key, s.action])),
  ...Array.from({ length: 9 }, (_, i): [string, Action] => [String(i + 1), `label-${i + 1}` as Action]),
  ["ArrowLeft", "pan-left"], ["ArrowRight", "pan-right"], ["ArrowUp", "pan-up"], ["ArrowDown", "pan-down"],
];

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

export function actionFor(event: KeyLike): Action | null {
  for (const [combo, action] of BINDINGS) if (matches(combo, event)) return action;
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

export function helpOverlay(): HTMLElement {
  const groups = [...new Set(SHORTCUTS.map((s) => s.group))];
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
    el("p", { class: "help-foot" }, "While a drawing tool is active, dragging paints; the wheel zooms; hold Space to pan."));
}
