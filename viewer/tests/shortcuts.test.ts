import { describe, expect, it } from "vitest";
import { actionFor, matches, type KeyLike } from "../src/shortcuts";

function key(k: string, mods: Partial<KeyLike> = {}): KeyLike {
  const code = /^[a-z]$/i.test(k) ? `Key${k.toUpperCase()}` : /^[0-9]$/.test(k) ? `Digit${k}` : "";
  return { key: k, code, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...mods };
}

describe("shortcuts", () => {
  it("tells undo, redo and save apart", () => {
    expect(actionFor(key("z", { ctrlKey: true }))).toBe("undo");
    expect(actionFor(key("Z", { ctrlKey: true, shiftKey: true }))).toBe("redo");
    expect(actionFor(key("y", { metaKey: true }))).toBe("redo");
    expect(actionFor(key("s", { ctrlKey: true }))).toBe("save");
    expect(actionFor(key("S", { shiftKey: true }))).toBe("skip");
    expect(actionFor(key("s"))).toBeNull();
    expect(actionFor(key("z"))).toBe("zoom-patch");
  });

  it("matches Alt+Z by physical key and punctuation whatever Shift is", () => {
    expect(actionFor({ ...key("Ω", { altKey: true }), code: "KeyZ" })).toBe("undo-save");
    expect(actionFor(key("?", { shiftKey: true }))).toBe("help");
    expect(actionFor(key("]"))).toBe("size-up");
    expect(actionFor(key("+", { shiftKey: true }))).toBe("zoom-in");
    expect(matches("+", key("+"))).toBe(true);
  });

  it("maps digits to labels and named keys", () => {
    expect(actionFor(key("3"))).toBe("label-3");
    expect(actionFor(key("0"))).toBe("home");
    expect(actionFor(key("Enter"))).toBe("polygon-close");
    expect(actionFor(key("Escape"))).toBe("cancel");
    expect(actionFor(key("ArrowUp"))).toBe("pan-up");
    expect(actionFor(key("Enter", { ctrlKey: true }))).toBeNull();
  });
});

describe("shortcuts by mode", () => {
  it("gives the inspection mode its own keys, with the worklist's letters meaning the same", () => {
    expect(actionFor(key("n"), "inspection")).toBe("item-next");
    expect(actionFor(key("N", { shiftKey: true }), "inspection")).toBe("item-prev");
    expect(actionFor(key("a"), "inspection")).toBe("decide-accept");
    expect(actionFor(key("A", { shiftKey: true }), "inspection")).toBe("item-accept");
    expect(actionFor(key("k"), "inspection")).toBe("decide-keep");
    expect(actionFor(key("K", { shiftKey: true }), "inspection")).toBe("item-keep");
    expect(actionFor(key("c"), "inspection")).toBe("decide-reannotate");
    expect(actionFor(key("C", { shiftKey: true }), "inspection")).toBe("item-reannotate");
    expect(actionFor(key("]"), "inspection")).toBe("instance-next");
    expect(actionFor(key("["), "inspection")).toBe("instance-prev");
    expect(actionFor(key("Escape"), "inspection")).toBe("instance-none");
  });

  it("keeps each mode's keys to itself and shares the general ones", () => {
    expect(actionFor(key("b"), "inspection")).toBeNull();
    expect(actionFor(key("ArrowUp"), "inspection")).toBeNull();
    expect(actionFor(key("3"), "inspection")).toBeNull();
    expect(actionFor(key("n"))).toBe("next");
    expect(actionFor(key("a"))).toBe("accept");
    expect(actionFor(key("A", { shiftKey: true }))).toBeNull();
    for (const mode of ["worklist", "inspection"] as const) {
      expect(actionFor(key("i"), mode)).toBe("mode");
      expect(actionFor(key("?", { shiftKey: true }), mode)).toBe("help");
    }
  });
});
