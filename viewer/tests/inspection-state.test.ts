import { describe, expect, it } from "vitest";
import {
  DEFAULT_STATE,
  Latest,
  debounce,
  formatState,
  instanceAt,
  orderInstances,
  orderItems,
  parseState,
  pickItem,
  stepInstance,
  stepItem,
  type Timers,
} from "../src/inspection-state";

/** Timers that run only when the test says how much time passed. */
class FakeTimers implements Timers {
  now = 0;
  private next = 1;
  private readonly waiting = new Map<number, { at: number; run: () => void }>();

  set(run: () => void, ms: number): number {
    const handle = this.next++;
    this.waiting.set(handle, { at: this.now + ms, run });
    return handle;
  }

  clear(handle: unknown): void {
    this.waiting.delete(handle as number);
  }

  advance(ms: number): void {
    this.now += ms;
    for (const [handle, timer] of [...this.waiting]) {
      if (timer.at <= this.now) {
        this.waiting.delete(handle);
        timer.run();
      }
    }
  }
}

const item = (id: number, overall: number, name = "s") => ({ id, overall, name });

describe("inspection URL state", () => {
  it("round-trips the inspection mode's state through the fragment", () => {
    const state = { mode: "inspection" as const, inspection: 2, item: 7, instance: 3, alpha: 0.25, gamma: 1 };
    const hash = formatState(state);
    expect(hash).toBe("#mode=inspection&inspection=2&item=7&instance=3&alpha=0.25&gamma=1");
    expect(parseState(hash)).toEqual(state);
  });

  it("reads bad or missing values as the defaults and keeps other parameters", () => {
    expect(parseState("#mode=inspection&item=abc&alpha=1.5&gamma=-0.1&instance=0")).toEqual({
      ...DEFAULT_STATE, mode: "inspection",
    });
    expect(parseState("")).toEqual(DEFAULT_STATE);
    expect(parseState("#mode=worklist&item=3")).toEqual(DEFAULT_STATE);
    expect(formatState({ ...DEFAULT_STATE }, "#other=1&item=4&token=secret")).toBe("#other=1");
    expect(formatState({ ...DEFAULT_STATE, mode: "inspection", alpha: 1 / 3 })).toBe("#mode=inspection&alpha=0.33");
  });
});

describe("inspection order", () => {
  it("ranks items by overall score, ties by name then id", () => {
    const ordered = orderItems([item(1, 0.2), item(2, 0.9), item(4, 0.5, "b"), item(3, 0.5, "a"), item(5, 0.5, "a")]);
    expect(ordered.map((i) => i.id)).toEqual([2, 3, 5, 4, 1]);
  });

  it("keeps the wanted item if the run still has it, else the top one", () => {
    const ordered = orderItems([item(1, 0.2), item(2, 0.9)]);
    expect(pickItem(ordered, 1)?.id).toBe(1);
    expect(pickItem(ordered, 99)?.id).toBe(2);
    expect(pickItem(ordered, null)?.id).toBe(2);
    expect(pickItem([], null)).toBeNull();
  });

  it("steps through items and stops at the ends", () => {
    const ordered = [item(5, 0.9), item(6, 0.5), item(7, 0.1)];
    expect(stepItem(ordered, 5, 1)?.id).toBe(6);
    expect(stepItem(ordered, 7, 1)?.id).toBe(7);
    expect(stepItem(ordered, 5, -1)?.id).toBe(5);
    expect(stepItem(ordered, null, 1)?.id).toBe(5);
    expect(stepItem([], 5, 1)).toBeNull();
  });

  it("lists suspect instances first and steps from the first suspect one", () => {
    const instances = orderInstances([
      { number: 1, score: 0.1, suspect: false },
      { number: 2, score: 0.7, suspect: true },
      { number: 3, score: 0.95, suspect: true },
      { number: 4, score: 0.3, suspect: false },
    ]);
    expect(instances.map((i) => i.number)).toEqual([3, 2, 4, 1]);
    expect(stepInstance(instances, null, 1)).toBe(3);
    expect(stepInstance(instances, null, -1)).toBe(1);
    expect(stepInstance(instances, 3, 1)).toBe(2);
    expect(stepInstance(instances, 1, 1)).toBe(1);
    expect(stepInstance([{ number: 8, score: 0, suspect: false }], null, 1)).toBe(8);
    expect(stepInstance([], null, 1)).toBeNull();
  });
});

describe("clicks on the combined view", () => {
  it("pick the smallest instance whose box holds the point", () => {
    const box = (x: number, y: number, width: number, height: number) => ({ x, y, width, height });
    const instances = [
      { number: 1, bbox: box(0, 0, 50, 50) },
      { number: 2, bbox: box(10, 10, 10, 10) },
      { number: 3, bbox: box(60, 0, 10, 10) },
    ];
    expect(instanceAt(instances, 15, 15)).toBe(2);
    expect(instanceAt(instances, 40, 40)).toBe(1);
    expect(instanceAt(instances, 20, 15)).toBe(1); // the right edge is outside the box
    expect(instanceAt(instances, 65, 5)).toBe(3);
    expect(instanceAt(instances, 80, 5)).toBeNull();
  });
});

describe("live sliders", () => {
  it("debounces a burst into one call with the last arguments", () => {
    const timers = new FakeTimers();
    const calls: number[] = [];
    const changed = debounce((alpha: number) => calls.push(alpha), 200, timers);
    changed(0.1);
    timers.advance(150);
    changed(0.2);
    timers.advance(150);
    changed(0.3);
    expect(calls).toEqual([]);
    timers.advance(199);
    expect(calls).toEqual([]);
    timers.advance(1);
    expect(calls).toEqual([0.3]);
    timers.advance(1000);
    expect(calls).toEqual([0.3]);
  });

  it("flushes a waiting call now and cancels one", () => {
    const timers = new FakeTimers();
    const calls: number[] = [];
    const changed = debounce((alpha: number) => calls.push(alpha), 200, timers);
    changed(0.4);
    changed.flush();
    expect(calls).toEqual([0.4]);
    timers.advance(500);
    expect(calls).toEqual([0.4]);
    changed.flush();
    expect(calls).toEqual([0.4]);
    changed(0.5);
    changed.cancel();
    timers.advance(500);
    expect(calls).toEqual([0.4]);
  });

  it("lets only the latest request's reply count", () => {
    const latest = new Latest();
    const first = latest.begin();
    const second = latest.begin();
    expect(latest.current(first)).toBe(false);
    expect(latest.current(second)).toBe(true);
  });
});
