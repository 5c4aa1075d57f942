import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';

// the page, its style sheet and icon, as written; the scripts, as compiled from dashboard/src by `npm run build`
// (dist/browser/ mirrors the repository: the browser build includes the view types of common/views.ts)
const PUBLIC_DIR = fileURLToPath(new URL('../../../dashboard/public/', import.meta.url));
const SCRIPTS_DIR = fileURLToPath(new URL('../../browser/dashboard/src/', import.meta.url));

// its own files only: no inline script or style attribute, images from blob: URLs (fetched with the token);
// connections to itself, and to the object store when uploads go there through slots (a presigned PUT)
function securityHeaders(storeOrigin: string | null): Record<string, string> {
  const connect = storeOrigin ? `'self' ${storeOrigin}` : "'self'";
  return {
    'Content-Security-Policy':
      `default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src ${connect}; ` +
      "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
}

/**
 * The dashboard's files: `/` (index.html), its style sheet and icon, and its scripts under `/js/`.
 * `storeOrigin`: where presigned URLs point (null: the store has none).
 */
export function dashboardRoutes(storeOrigin: string | null): Router {
  const headers = securityHeaders(storeOrigin);
  const setHeaders = (res: ServerResponse): void => {
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    // for the HTTP metrics: these requests match no route
    (res as express.Response).locals.route = 'static';
  };
  const router = Router();
  const options = { setHeaders, fallthrough: true, redirect: false, dotfiles: 'ignore' as const };
  router.use(express.static(PUBLIC_DIR, options));
  router.use('/js', express.static(SCRIPTS_DIR, options));
  return router;
}
