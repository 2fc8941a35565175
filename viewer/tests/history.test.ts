import { describe, expect, it } from "vitest";
import { UndoStack } from "../src/editor/history";
import { EditorModel } from "../src/editor/model";

describe("undo stack", () => {
  it("undoes and redoes in order and a new edit drops redo", () => {
    const stack = new UndoStack();
    const a = Uint8Array.from([0]);
    const b = Uint8Array.from([1]);
    const c = Uint8Array.from([2]);
    stack.record(a); // a → b
    stack.record(b); // b → c
    expect(stack.undo(c)).toEqual(b);
    expect(stack.undo(b)).toEqual(a);
    expect(stack.undo(a)).toBeNull();
    expect(stack.redo(a)).toEqual(b);
    expect(stack.canRedo).toBe(true);
    stack.record(b);
    expect(stack.canRedo).toBe(false);
    expect(stack.redo(b)).toBeNull();
  });

  it("keeps copies, not the arrays it was given", () => {
    const stack = new UndoStack();
    const state = Uint8Array.from([5, 5]);
    stack.record(state);
    state[0] = 9;
    expect(stack.undo(state)).toEqual(Uint8Array.from([5, 5]));
  });

  it("drops the oldest snapshots past its byte budget", () => {
    const stack = new UndoStack(40, 2); // 4 snapshots of 10 bytes
    for (let i = 0; i < 6; i++) stack.record(new Uint8Array(10).fill(i));
    const seen: number[] = [];
    let state: Uint8Array | null = new Uint8Array(10).fill(6);
    while ((state = stack.undo(state ?? new Uint8Array(10)))) seen.push(state[0]);
    expect(seen).toEqual([5, 4, 3, 2]);
  });
});

describe("editor model", () => {
  it("undoes a stroke, a fill and a clear, and redoes them", () => {
    const model = new EditorModel(20, 10, new Uint8Array(200).fill(1));
    expect(model.dirty).toBe(false);
    model.beginStroke({ x: 2.5, y: 5.5 }, 3, 2);
    model.continueStroke({ x: 12.5, y: 5.5 });
    model.endStroke();
    expect(model.labelAt(7, 5)).toBe(2);
    expect(model.dirty).toBe(true);
    model.fillPolygon([{ x: 15, y: 0 }, { x: 20, y: 0 }, { x: 20, y: 10 }, { x: 15, y: 10 }], 3);
    model.clear();
    expect(model.count(0)).toBe(200);
    expect(model.undo()).toBe(true);
    expect(model.labelAt(17, 3)).toBe(3);
    expect(model.undo()).toBe(true);
    expect(model.labelAt(17, 3)).toBe(1);
    expect(model.labelAt(7, 5)).toBe(2);
    expect(model.undo()).toBe(true);
    expect(model.labelAt(7, 5)).toBe(1);
    expect(model.dirty).toBe(false);
    expect(model.undo()).toBe(false);
    expect(model.redo()).toBe(true);
    expect(model.labelAt(7, 5)).toBe(2);
  });

  it("loads the server's state as a fresh start and a re-applied edit as undoable", () => {
    const model = new EditorModel(2, 2);
    model.beginStroke({ x: 0.5, y: 0.5 }, 1, 1);
    model.endStroke();
    const mine = model.labels.slice();
    model.load(Uint8Array.from([2, 2, 2, 2]));
    expect(model.history.canUndo).toBe(false);
    expect(model.dirty).toBe(false);
    model.load(mine, true);
    expect(model.dirty).toBe(true);
    expect(model.undo()).toBe(true);
    expect(Array.from(model.labels)).toEqual([2, 2, 2, 2]);
    model.redo();
    model.markSaved();
    expect(model.dirty).toBe(false);
  });

  it("tells views which rectangle changed", () => {
    const model = new EditorModel(10, 10);
    const rects: unknown[] = [];
    model.onChange((rect) => rects.push(rect));
    model.beginStroke({ x: 5, y: 5 }, 2, 1);
    model.beginStroke({ x: -9, y: -9 }, 2, 1); // outside: nothing to redraw
    model.clear();
    expect(rects).toEqual([{ x: 4, y: 4, width: 2, height: 2 }, null]);
    expect(model.labelAt(-1, 0)).toBe(-1);
  });
});
