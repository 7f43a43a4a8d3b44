import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import express, { type Router } from 'express';
import { CONSOLE_CSS, CONSOLE_HTML, CONSOLE_JS } from './vnc-console.page.js';

/**
 * The console page (GET /console/): noVNC from the @novnc/novnc package (its ES modules served from
 * node_modules), a VM switcher, the lab's instruction pages, live status and token renewal over this
 * server's GraphQL. It makes no request outside this server, and its Content-Security-Policy says so.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-src 'self'",
  "frame-ancestors 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
].join('; ');

/** The package root of @novnc/novnc (its only export is core/rfb.js). */
function novncRoot(): string {
  return dirname(dirname(createRequire(import.meta.url).resolve('@novnc/novnc')));
}

export function consoleRouter(): Router {
  const router = express.Router({ strict: true });
  const root = novncRoot();
  const headers = (res: express.Response, type: string) => {
    res.type(type);
    res.set({ 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-cache' });
  };
  // /console -> /console/ (relative, so that it works under any path prefix; the fragment is kept).
  router.get('/', (req, res) => {
    if (!req.originalUrl.split('?')[0].endsWith('/')) {
      const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : '';
      return res.redirect(301, `console/${query}`);
    }
    headers(res, 'html');
    res.send(CONSOLE_HTML);
  });
  router.get('/console.js', (_req, res) => {
    headers(res, 'text/javascript');
    res.send(CONSOLE_JS);
  });
  router.get('/console.css', (_req, res) => {
    headers(res, 'text/css');
    res.send(CONSOLE_CSS);
  });
  const statics = { fallthrough: false, index: false, maxAge: '1h', setHeaders: (res: express.Response) => res.set('X-Content-Type-Options', 'nosniff') };
  router.use('/novnc/core', express.static(join(root, 'core'), statics));
  router.use('/novnc/vendor', express.static(join(root, 'vendor'), statics));
  return router;
}
