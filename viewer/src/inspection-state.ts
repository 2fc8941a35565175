/**
 * The inspection mode's state without the DOM: where the pathologist is (run, item, instance,
 * α, γ) as it is kept in the address's fragment, the items' order, the instance to move to,
 * and the timing helpers behind the live α / γ sliders (debounce; only the latest reply
 * counts). The panel in `inspection.ts` shows what these decide.
 */

/** Which of the viewer's modes is shown. */
export type Mode = "worklist" | "inspection";

/** The part of the viewer's state kept in the URL's fragment (after the token is taken). */
export interface ViewState {
  mode: Mode;
  /** The inspection run; null: the newest. */
  inspection: number | null;
  /** The open item; null: the top-ranked one. */
  item: number | null;
  /** The selected instance's number within the item; null: the item as a whole. */
  instance: number | null;
  /** α and γ in [0, 1]; null: the run's own. */
  alpha: number | null;
  gamma: number | null;
}

export const DEFAULT_STATE: ViewState = {
  mode: "worklist", inspection: null, item: null, instance: null, alpha: null, gamma: null,
};

function positiveInt(value: string | null): number | null {
  if (value === null || !/^\d+$/.test(value)) return null;
  const n = Number(value);
  return n > 0 ? n : null;
}

/** A weight in [0, 1] from the URL; anything else (missing, text, out of range) is null. */
export function unitInterval(value: string | null): number | null {
  if (value === null || value.trim() === "") return null;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 && n <= 1 ? n : null;
}

/** The state a fragment such as `#mode=inspection&inspection=2&item=7&alpha=0.5` stands for. */
export function parseState(hash: string): ViewState {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  if (params.get("mode") !== "inspection") return { ...DEFAULT_STATE };
  return {
    mode: "inspection",
    inspection: positiveInt(params.get("inspection")),
    item: positiveInt(params.get("item")),
    instance: positiveInt(params.get("instance")),
    alpha: unitInterval(params.get("alpha")),
    gamma: unitInterval(params.get("gamma")),
  };
}

/**
 * The fragment for `state`, keeping any other parameters of `hash` (never the token, which
 * `auth.ts` has already taken out). The worklist mode has no parameters of its own.
 */
export function formatState(state: ViewState, hash = ""): string {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  for (const key of ["mode", "inspection", "item", "instance", "alpha", "gamma"]) params.delete(key);
  params.delete("token");
  if (state.mode === "inspection") {
    params.set("mode", "inspection");
    if (state.inspection !== null) params.set("inspection", String(state.inspection));
    if (state.item !== null) params.set("item", String(state.item));
    if (state.instance !== null) params.set("instance", String(state.instance));
    if (state.alpha !== null) params.set("alpha", formatWeight(state.alpha));
    if (state.gamma !== null) params.set("gamma", formatWeight(state.gamma));
  }
  const text = params.toString();
  return text ? `#${text}` : "";
}

/** A weight as the sliders and the URL show it: two decimals, no trailing zeros. */
export function formatWeight(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** What the item order needs of an item. */
export interface Ranked {
  id: number;
  overall: number;
  name: string;
}

/**
 * Items most suspect first: overall score descending, then name and id, so equal scores
 * keep one order whatever order the reply listed them in.
 */
export function orderItems<T extends Ranked>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => b.overall - a.overall || a.name.localeCompare(b.name) || a.id - b.id);
}

/**
 * The item to open: `wanted` when the run still has it, else the top-ranked one; null for
 * a run without items.
 */
export function pickItem<T extends { id: number }>(ordered: readonly T[], wanted: number | null): T | null {
  return ordered.find((item) => item.id === wanted) ?? ordered[0] ?? null;
}

/** The item `step` places after (or, negative, before) `currentId`, stopping at the ends. */
export function stepItem<T extends { id: number }>(ordered: readonly T[], currentId: number | null, step: number): T | null {
  if (ordered.length === 0) return null;
  const at = ordered.findIndex((item) => item.id === currentId);
  if (at < 0) return ordered[0];
  return ordered[Math.min(ordered.length - 1, Math.max(0, at + step))];
}

/**
 * The instance number `step` moves to from `current` through `instances` (an item's, in
 * list order). From none, forward starts at the first suspect one (else the first) and
 * backward at the last; the ends stop.
 */
export function stepInstance<T extends { number: number; suspect: boolean }>(
  instances: readonly T[], current: number | null, step: number,
): number | null {
  if (instances.length === 0) return null;
  const at = instances.findIndex((instance) => instance.number === current);
  if (at < 0) {
    if (step < 0) return instances[instances.length - 1].number;
    return (instances.find((instance) => instance.suspect) ?? instances[0]).number;
  }
  return instances[Math.min(instances.length - 1, Math.max(0, at + step))].number;
}

/** The instances a list shows: suspect first, then by score descending, then by number. */
export function orderInstances<T extends { number: number; score: number; suspect: boolean }>(instances: readonly T[]): T[] {
  return [...instances].sort((a, b) =>
    Number(b.suspect) - Number(a.suspect) || b.score - a.score || a.number - b.number);
}

/** A box in a view's pixels (x, y from its top-left). */
export interface ViewBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The instance a click at view pixel (x, y) means: the smallest whose box holds the point
 * (a small nucleus inside a large one's box stays reachable); null where none does.
 */
export function instanceAt<T extends { number: number; bbox: ViewBox }>(instances: readonly T[], x: number, y: number): number | null {
  const hits = instances.filter(({ bbox: b }) => x >= b.x && x < b.x + b.width && y >= b.y && y < b.y + b.height);
  hits.sort((a, b) => a.bbox.width * a.bbox.height - b.bbox.width * b.bbox.height || a.number - b.number);
  return hits[0]?.number ?? null;
}

/** The timers `debounce` uses (the window's; tests pass fakes). */
export interface Timers {
  set(run: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const WINDOW_TIMERS: Timers = {
  set: (run, ms) => setTimeout(run, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface Debounced<A extends unknown[]> {
  (...args: A): void;
  /** Runs a waiting call now (nothing when none waits). */
  flush(): void;
  /** Drops a waiting call. */
  cancel(): void;
}

/**
 * `run` called once `ms` after the last of a burst of calls, with that last call's
 * arguments: a slider dragged across its range asks the server once, when it rests.
 */
export function debounce<A extends unknown[]>(run: (...args: A) => void, ms: number, timers: Timers = WINDOW_TIMERS): Debounced<A> {
  let handle: unknown = null;
  let waiting: A | null = null;
  const fire = () => {
    handle = null;
    const args = waiting;
    waiting = null;
    if (args) run(...args);
  };
  const debounced = (...args: A) => {
    waiting = args;
    if (handle !== null) timers.clear(handle);
    handle = timers.set(fire, ms);
  };
  debounced.flush = () => {
    if (handle !== null) timers.clear(handle);
    fire();
  };
  debounced.cancel = () => {
    if (handle !== null) timers.clear(handle);
    handle = null;
    waiting = null;
  };
  return debounced;
}

/**
 * Only the latest of overlapping requests counts: `begin()` hands out a ticket and
 * `current(ticket)` says whether no later request began since. A slow reply for an old α
 * never overwrites the list the newer α already showed.
 */
export class Latest {
  private issued = 0;

  begin(): number {
    return ++this.issued;
  }

  current(ticket: number): boolean {
    return ticket === this.issued;
  }
}
