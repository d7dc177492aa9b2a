/**
 * The widget, mounted by its loader (loader.ts) with what the host page's script tag says. It lives in a
 * shadow root so the host's CSS and ours never touch.
 */
import { createRoot } from 'react-dom/client';
import styles from './widget.css?inline';
import { pickLocale } from '@callchart/machines/locales';
import { Widget } from './Widget.tsx';

const HOST_ID = 'callchart-widget';

export interface WidgetMount {
  /** The origin of the server the widget was loaded from: its API and its socket live there. */
  origin: string;
  /** The script tag's `data-*` attributes. */
  data: Partial<Record<string, string>>;
}

function render({ origin, data }: WidgetMount): void {
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
      pool={data.pool ?? 'support'}
      visitorName={data.name}
      origin={origin}
      lang={pickLocale([data.lang, navigator.language, ...navigator.languages])}
    />,
  );
}

export function mount(options: WidgetMount): void {
  if (document.body) render(options);
  else document.addEventListener('DOMContentLoaded', () => render(options), { once: true });
}
