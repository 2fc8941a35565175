import { defineConfig } from "vitest/config";

// The site API serves dist/ at `/`; relative asset URLs keep the build independent of the
// mount point. `npm run dev` proxies /api to a running `pathloop serve` (PATHLOOP_API).
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 600 },
  server: {
    proxy: { "/api": process.env.PATHLOOP_API ?? "http://127.0.0.1:8765" },
  },
  test: { environment: "node", include: ["tests/**/*.test.ts"] },
});
