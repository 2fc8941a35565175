/**
 * Entry point: the token, the API client, the app; and what end-to-end tests read
 * (`window.pathloopViewer`, `window.pathloopTilesLoaded()`, `window.pathloopEditor`).
 */
import "./style.css";
import type OpenSeadragon from "openseadragon";
import { SiteApi } from "./api/client";
import { App } from "./app";
import { takeToken } from "./auth";
import { banner, describe, notify } from "./status";

export interface EditorProbe {
  /** The label at mask pixel (x, y) of the open patch; -1 outside it or with none open. */
  labelAt(x: number, y: number): number;
  /** How many mask pixels hold `value`. */
  count(value: number): number;
  readonly patchId: number | null;
  readonly baseVersion: number | null;
  readonly maskSize: { width: number; height: number } | null;
  readonly dirty: boolean;
  readonly tool: string;
}

declare global {
  interface Window {
    pathloopViewer?: OpenSeadragon.Viewer;
    pathloopTilesLoaded?: () => Promise<void>;
    pathloopEditor?: EditorProbe;
    pathloopApp?: App;
  }
}

const TOKEN_HELP = "The access token is missing or wrong. Open the address that `pathloop serve` printed "
  + "(it ends in #token=…), or ask your site's administrator for a token.";

function unauthorized(): void {
  banner(TOKEN_HELP, "error", [], "auth-error");
  notify("Not signed in: token missing or wrong", "error");
}

async function main(): Promise<void> {
  const token = takeToken();
  if (!token) {
    unauthorized();
    return;
  }
  let rejected = false;
  const api = new SiteApi(token, () => {
    if (!rejected) unauthorized();
    rejected = true;
    app.jobs.stop();
  });
  const app = new App(api);
  window.pathloopApp = app;
  window.pathloopViewer = app.view.viewer;
  window.pathloopTilesLoaded = () => app.view.tilesLoaded();
  const editor = app.editor;
  window.pathloopEditor = {
    labelAt: (x, y) => editor.labelAt(x, y),
    count: (value) => editor.session?.model.count(value) ?? 0,
    get patchId() {
      return editor.patch?.id ?? null;
    },
    get baseVersion() {
      return editor.session?.baseVersion ?? null;
    },
    get maskSize() {
      const model = editor.session?.model;
      return model ? { width: model.width, height: model.height } : null;
    },
    get dirty() {
      return editor.dirty;
    },
    get tool() {
      return editor.tools.tool;
    },
  };
  try {
    await app.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    if (!rejected) notify(`Cannot reach the site API: ${describe(error)}`, "error");
  }
}

void main();
