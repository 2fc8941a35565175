import { describe, expect, it } from "vitest";
import { takeToken } from "../src/auth";

function storage() {
  const items = new Map<string, string>();
  return {
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value),
  };
}

describe("token from the URL fragment", () => {
  it("keeps the token and strips it from the address bar", () => {
    const store = storage();
    const urls: string[] = [];
    const history = { replaceState: (_s: unknown, _t: string, url?: string | URL | null) => void urls.push(String(url)) };
    const token = takeToken({ hash: "#token=abc%2B1&x=2", pathname: "/", search: "?q=1" }, store, history);
    expect(token).toBe("abc+1");
    expect(urls).toEqual(["/?q=1#x=2"]);
    expect(takeToken({ hash: "", pathname: "/", search: "" }, store, history)).toBe("abc+1");
    expect(urls).toHaveLength(1);
  });

  it("has no token when neither the fragment nor the session holds one", () => {
    const history = { replaceState: () => undefined };
    expect(takeToken({ hash: "#other=1", pathname: "/", search: "" }, storage(), history)).toBeNull();
  });
});
