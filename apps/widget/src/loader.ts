/**
 * `widget.js`, the one URL a host page embeds: `<script src=".../widget.js" data-pool="support" defer></script>`.
 * It is all that keeps its name across releases, so it stays a few hundred bytes that browsers revalidate;
 * the widget itself is a content-hashed module beside it, cached for good, and code only a call needs is
 * fetched when a call starts. The script's own address says which server the widget belongs to.
 */
import type { WidgetMount } from './main.tsx';

declare const WIDGET_ENTRY: string;

// Only readable while the script itself runs, which is also when a deferred script runs.
const script = document.currentScript instanceof HTMLScriptElement ? document.currentScript : null;
const src = script?.src ? new URL(script.src, location.href) : new URL('/widget.js', location.href);

import(/* @vite-ignore */ new URL(WIDGET_ENTRY, src).href).then(
  ({ mount }: { mount: (options: WidgetMount) => void }) => mount({ origin: src.origin, data: { ...script?.dataset } }),
  (error: unknown) => console.warn('[callchart] the widget could not be loaded', error),
);
