import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';

// the page, its style sheet and icon, as written; the scripts, as compiled from dashboard/src by `npm run build`
// (dist/browser/ mirrors the repository: the browser build includes the view types of common/views.ts)
const PUBLIC_DIR = fileURLToPath(new URL('../../../dashboard/public/', import.meta.url));
const SCRIPTS_DIR = fileURLToPath(new URL('../../browser/dashboard/src/', import.meta.url));

// its own files only: no inline script or style attribute, images from blob: URLs (fetched with the token)
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

function setHeaders(res: ServerResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  // for the HTTP metrics: these requests match no route
  (res as express.Response).locals.route = 'static';
}

/** The dashboard's files: `/` (index.html), its style sheet and icon, and its scripts under `/js/`. */
export function dashboardRoutes(): Router {
  const router = Router();
  const options = { setHeaders, fallthrough: true, redirect: false, dotfiles: 'ignore' as const };
  router.use(express.static(PUBLIC_DIR, options));
  router.use('/js', express.static(SCRIPTS_DIR, options));
  return router;
}
