// What a login costs at least: the password's PBKDF2-SHA256 through WebCrypto with the
// iterations and salt of the bench user's stored hash, compared with that hash. The bench sets
// Gatehouse's login beside it ("login ≤ 1.1 × its PBKDF2 alone"); see bench/workerd.mjs.
export default {
  async fetch(req, env) {
    const { password } = await req.json();
    const [, , params, salt, expected] = env.BENCH_PASSWORD_PHC.split('$');
    const iterations = Number(/i=(\d+)/.exec(params)[1]);
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits']);
    const bits = await crypto.subtle.deriveBits(
      { name: 'PBKDF2', hash: 'SHA-256', salt: Uint8Array.from(atob(salt), (c) => c.charCodeAt(0)), iterations },
      key,
      256,
    );
    const got = btoa(String.fromCharCode(...new Uint8Array(bits))).replace(/=+$/, '');
    return Response.json({ ok: got === expected }, { status: got === expected ? 200 : 401 });
  },
};
