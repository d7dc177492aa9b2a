/**
 * The HTTP security headers, with helmet. Every response gets the headers that hold for any content
 * (`nosniff`, a referrer policy, no cross-domain policy files); the server's own pages (the demo host
 * page, the agent dashboard and the inspector) also get a strict Content-Security-Policy and may not be
 * framed. The widget's scripts and the API get no framing or resource-policy headers of ours: other
 * sites embed the one and call the other, and `pages.ts` says what the widget's files may do.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import helmet from 'helmet';

// A year, and only for this host: HSTS over plain HTTP is ignored, and behind TLS the operator's other
// subdomains are not ours to commit.
const HSTS_MAX_AGE_S = 365 * 24 * 3_600;

const forEveryResponse = helmet({
  contentSecurityPolicy: false,
  // Set on the pages alone: the widget's files must stay loadable by other sites.
  xFrameOptions: false,
  crossOriginResourcePolicy: false,
  strictTransportSecurity: { maxAge: HSTS_MAX_AGE_S, includeSubDomains: false },
  // Page URLs carry nothing a third party needs, and the widget's host page sets its own policy.
  referrerPolicy: { policy: 'no-referrer' },
});

/** Wraps the app so that every response it gives carries the headers that hold for any content. */
export function withCommonHeaders(app: RequestListener): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    forEveryResponse(req, res, () => app(req, res));
  };
}

// The demo page's search form is decoration; its one inline handler, `return false`, keeps it from
// submitting. Allowing that exact attribute by hash keeps every other inline script out.
const DEMO_FORM_HANDLER = "'sha256-GZIcz60Uwd6wT3vaYke/atSr53TehbYAPepOa3d03Vw='";

/**
 * What the built pages load: their own scripts and styles (the widget's shadow root and React add
 * `<style>` elements, hence inline styles but never inline scripts), `data:` icons, media streams and
 * downloads as `blob:` URLs, and the API and the socket on this origin (`'self'` covers ws: and wss:).
 */
function pagePolicy(scriptAttributes: string[]) {
  return helmet.contentSecurityPolicy({
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      scriptSrcAttr: scriptAttributes,
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:', 'blob:'],
      mediaSrc: ["'self'", 'blob:'],
      fontSrc: ["'self'"],
      connectSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
  });
}

// Nothing frames these pages: a dashboard in someone else's frame is a clickjacking target.
const notFramed = helmet.xFrameOptions({ action: 'deny' });
const ownOriginOnly = helmet.crossOriginResourcePolicy({ policy: 'same-origin' });

/** The dashboard's and the inspector's pages. */
export const appPageHeaders: RequestHandler[] = [pagePolicy(["'none'"]), notFramed, ownOriginOnly];

/** The demo host page. */
export const demoPageHeaders: RequestHandler[] = [pagePolicy(["'unsafe-hashes'", DEMO_FORM_HANDLER]), notFramed, ownOriginOnly];
