import { fileURLToPath } from 'node:url';

// A static site: `nuxt generate` writes plain files to .output/public, no server runs.
// GATEHOUSE_URL (at generate time) is where the site's Gatehouse lives.
export default defineNuxtConfig({
  compatibilityDate: '2026-04-01',
  ssr: false,
  devtools: { enabled: false },
  telemetry: false,
  alias: {
    // The client module from this repository, the same file Gatehouse serves at /client/gatehouse.js.
    '#gatehouse': fileURLToPath(new URL('../../clients/js/gatehouse.js', import.meta.url)),
  },
  runtimeConfig: {
    public: {
      gatehouseUrl: process.env.GATEHOUSE_URL || 'http://localhost:8787',
    },
  },
  app: {
    head: { title: 'Gatehouse + Nuxt (static)' },
  },
});
