/**
 * The access token: `pathloop serve` prints `http://127.0.0.1:PORT/#token=…`.
 *
 * The token is taken from the fragment (which browsers never send to the server), kept in
 * sessionStorage for reloads of this tab, and removed from the address bar and history.
 */
const KEY = "pathloop-token";

export function takeToken(
  location: Pick<Location, "hash" | "pathname" | "search"> = window.location,
  storage: Pick<Storage, "getItem" | "setItem"> = window.sessionStorage,
  history: Pick<History, "replaceState"> = window.history,
): string | null {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromUrl = params.get("token");
  if (fromUrl) {
    storage.setItem(KEY, fromUrl);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  }
  return storage.getItem(KEY) || null;
}

export function forgetToken(storage: Pick<Storage, "removeItem"> = window.sessionStorage): void {
  storage.removeItem(KEY);
}
