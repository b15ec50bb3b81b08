// A static site: `nuxt generate` writes plain files to .output/public, no server runs.
// GATEHOUSE_URL (at generate time) is where the site's Gatehouse lives.
export default defineNuxtConfig({
  compatibilityDate: '2026-04-01',
  ssr: false,
  devtools: { enabled: false },
  telemetry: false,
  // Gatehouse: useGatehouse(), the gatehouse-auth route middleware and $gatehouse.
  modules: ['@gatehouse/nuxt'],
  gatehouse: {
    url: process.env.GATEHOUSE_URL || 'http://localhost:8787',
  },
  app: {
    head: { title: 'Gatehouse + Nuxt (static)' },
  },
});
