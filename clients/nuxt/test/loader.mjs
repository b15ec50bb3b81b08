// Module hooks for the unit tests (registered by setup.mjs): the module's runtime files run in
// plain Node as Nuxt would build them for the browser.
// - `#app` is a fake Nuxt app (fakes/nuxt-app.mjs); `@gatehouse/client` a scriptable client
//   (fakes/client.mjs) — both only for imports made by this package's files;
// - other bare imports (vue, @nuxt/kit) resolve from the consuming site, the example
//   (examples/nuxt-static), as they do in a site: they are this package's peer dependencies;
// - `import.meta.client` / `import.meta.server` are replaced as Nuxt's build does: browser
//   values, or server values for a URL ending in `?server`.

const PACKAGE = new URL('../', import.meta.url).href;
const SITE = new URL('../../../examples/nuxt-static/package.json', import.meta.url).href;
const FAKES = {
  '#app': new URL('./fakes/nuxt-app.mjs', import.meta.url).href,
  '@gatehouse/client': new URL('./fakes/client.mjs', import.meta.url).href,
};

const bare = (s) => !/^(\.|\/|node:|data:|file:)/.test(s);

export async function resolve(specifier, context, next) {
  const parent = context.parentURL || '';
  if (!parent.startsWith(PACKAGE) || parent.startsWith(new URL('./fakes/', import.meta.url).href)) return next(specifier, context);
  if (FAKES[specifier]) return { url: FAKES[specifier], shortCircuit: true };
  if (bare(specifier)) {
    try {
      return await next(specifier, { ...context, parentURL: SITE });
    } catch (err) {
      throw new Error(`${specifier} is not installed in examples/nuxt-static (run bash scripts/setup.sh): ${err.message}`);
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  const result = await next(url, context);
  if (!url.startsWith(PACKAGE + 'src/runtime/') || result.source == null) return result;
  const server = new URL(url).search === '?server';
  const source = String(result.source)
    .replace(/\bimport\.meta\.client\b/g, String(!server))
    .replace(/\bimport\.meta\.server\b/g, String(server));
  return { ...result, source };
}
