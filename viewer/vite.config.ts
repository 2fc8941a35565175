import { defineConfig } from "vitest/config";

// Node's `process`, without pulling Node's types into the browser code's type check.
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};

// The site API serves dist/ at `/`; relative asset URLs keep the build independent of the
// mount point. `npm run dev` proxies /api to a running `pathloop serve` (PATHLOOP_API).
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 600 },
  server: {
    proxy: { "/api": env.PATHLOOP_API ?? "http://127.0.0.1:8765" },
  },
  test: { environment: "node", include: ["tests/**/*.test.ts"] },
});
