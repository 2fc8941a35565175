/**
 * The correction history of the open patch, newest first, with "restore" per version and
 * "undo last save"; version 0 stands for "no correction" (the model's prediction).
 */
import type { CorrectionVersion } from "../api/types";
import { button, el, formatTime } from "../dom";

export interface VersionActions {
  restore: (version: number) => void;
  undoLastSave: () => void;
}

const ACTIONS: Record<CorrectionVersion["action"], string> = {
  edit: "edited",
  revert: "reverted",
  "accept-prediction": "accepted prediction",
  "keep-annotation": "kept annotation",
};

export function describeVersion(version: CorrectionVersion): string {
  const what = version.action === "revert" && version.reverted_to !== null
    ? `restored v${version.reverted_to}`
    : ACTIONS[version.action] ?? version.action;
  return what;
}

export class VersionsPanel {
  constructor(private readonly root: HTMLElement, private readonly actions: VersionActions) {}

  render(versions: CorrectionVersion[] | null, baseVersion: number): void {
    if (!versions) {
      this.root.replaceChildren(el("p", { class: "empty" }, "Open a patch to see its versions."));
      return;
    }
    const latest = versions.at(-1)?.version ?? 0;
    const undo = button("Undo last save", "undo-save", () => this.actions.undoLastSave(),
      "A new version going back to the one before the latest (Alt+Z)");
    undo.disabled = versions.length === 0;
    const rows = [...versions].reverse().map((version) => this.row(version, latest));
    rows.push(this.row(null, latest));
    this.root.replaceChildren(
      el("div", { class: "versions-head" },
        el("span", { "data-testid": "base-version" }, `editing from v${baseVersion}`), undo),
      el("ol", { class: "versions", "data-testid": "versions" }, ...rows),
    );
  }

  private row(version: CorrectionVersion | null, latest: number): HTMLElement {
    const number = version?.version ?? 0;
    const current = number === latest;
    const restore = current ? null : button("restore", `restore-${number}`, () => this.actions.restore(number),
      `A new version with v${number}'s mask`);
    const text = version
      ? `${describeVersion(version)} · ${version.author} · ${formatTime(version.created_at)}`
      : "no correction (prediction)";
    return el("li", {
      class: current ? "current" : "",
      "data-testid": "version-row",
      "data-version": number,
      "data-action": version?.action ?? "none",
      "data-author": version?.author ?? "",
    },
      el("span", { class: "version-number" }, `v${number}`),
      el("span", { class: "version-text", title: text }, text),
      restore);
  }
}
