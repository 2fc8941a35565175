/**
 * What the viewer tells the user: a one-line status in the toolbar, a banner for what needs
 * a decision (a wrong token, a conflicting save), and a busy count that tests and the
 * cursor read (`<body data-busy>`).
 */
import { button, byId, el } from "./dom";

export type Level = "info" | "ok" | "warn" | "error";

let busy = 0;

/** Runs `work` counted as busy (the body's `data-busy` is 0 again when all are done). */
export async function track<T>(work: Promise<T>): Promise<T> {
  setBusy(+1);
  try {
    return await work;
  } finally {
    setBusy(-1);
  }
}

function setBusy(delta: number): void {
  busy += delta;
  document.body.dataset.busy = String(busy);
}

export function notify(message: string, level: Level = "info"): void {
  const status = byId("status");
  status.textContent = message;
  status.dataset.level = level;
  status.title = message;
}

export interface BannerAction {
  label: string;
  testId: string;
  run: () => void;
}

/** Shows a banner with actions (each closes it); `clearBanner` removes it. */
export function banner(message: string, level: Level, actions: BannerAction[] = [], testId = "banner"): void {
  const box = byId("banner");
  box.hidden = false;
  box.dataset.level = level;
  box.dataset.testid = testId;
  box.replaceChildren(
    el("span", { class: "banner-text" }, message),
    ...actions.map((action) => button(action.label, action.testId, () => {
      clearBanner();
      action.run();
    })),
  );
}

export function clearBanner(): void {
  const box = byId("banner");
  box.hidden = true;
  box.replaceChildren();
}

/** A readable line for an error, whatever was thrown. */
export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
