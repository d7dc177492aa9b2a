/**
 * The embed entry: `<script src="/widget.js" data-pool="support" defer></script>` is all a host page
 * adds. The widget lives in a shadow root so the host's CSS and ours never touch.
 */
import { createRoot } from 'react-dom/client';
import styles from './widget.css?inline';
import { Widget } from './Widget.tsx';

const HOST_ID = 'callchart-widget';

// Only readable while the script itself runs, which is also when a deferred script runs.
const script = document.currentScript instanceof HTMLScriptElement ? document.currentScript : null;

function mount(): void {
  // A host page that includes the script twice still gets one widget.
  if (document.getElementById(HOST_ID)) return;
  const host = document.createElement('div');
  host.id = HOST_ID;
  document.body.append(host);
  const shadow = host.attachShadow({ mode: 'open' });
  const style = document.createElement('style');
  style.textContent = styles;
  const container = document.createElement('div');
  shadow.append(style, container);
  createRoot(container).render(
    <Widget
      pool={script?.dataset.pool ?? 'support'}
      visitorName={script?.dataset.name}
      origin={script?.src ? new URL(script.src, location.href).origin : location.origin}
    />,
  );
}

if (document.body) mount();
else document.addEventListener('DOMContentLoaded', mount, { once: true });
