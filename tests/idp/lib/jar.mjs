// A small cookie jar for the test helpers (one host at a time): honours Path, Max-Age and Expires.

export class CookieJar {
  #cookies = new Map(); // `${name}\u0000${path}` -> { name, value, path, expires }

  static defaultPath(pathname) {
    if (!pathname.startsWith('/')) return '/';
    const i = pathname.lastIndexOf('/');
    return i <= 0 ? '/' : pathname.slice(0, i);
  }

  static pathMatches(reqPath, cookiePath) {
    if (reqPath === cookiePath) return true;
    if (!reqPath.startsWith(cookiePath)) return false;
    return cookiePath.endsWith('/') || reqPath[cookiePath.length] === '/';
  }

  store(url, setCookies) {
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let cookiePath;
      let expires;
      for (const attr of attrs) {
        const [k, ...v] = attr.split('=');
        const key = k.trim().toLowerCase();
        const val = v.join('=').trim();
        if (key === 'path' && val.startsWith('/')) cookiePath = val;
        else if (key === 'max-age' && /^-?\d+$/.test(val)) expires = Date.now() + Number(val) * 1000;
        else if (key === 'expires' && expires === undefined) {
          const t = Date.parse(val);
          if (!Number.isNaN(t)) expires = t;
        }
      }
      cookiePath ??= CookieJar.defaultPath(url.pathname);
      const id = `${name}\u0000${cookiePath}`;
      if (expires !== undefined && expires <= Date.now()) this.#cookies.delete(id);
      else this.#cookies.set(id, { name, value, path: cookiePath, expires });
    }
  }

  header(url) {
    const now = Date.now();
    const matching = [...this.#cookies.values()]
      .filter((c) => (c.expires === undefined || c.expires > now) && CookieJar.pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}
