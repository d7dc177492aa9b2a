import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { agentTranslator, pickLocale } from '@callchart/machines/locales';
import './dashboard.css';
import { App } from './App.tsx';
import { LocaleContext } from './locale.ts';

// `?lang=` first, to check a translation or to override what the browser asks for.
const locale = agentTranslator(pickLocale([new URLSearchParams(location.search).get('lang'), navigator.language, ...navigator.languages]));
document.documentElement.lang = locale.lang;
document.title = locale.t('agent.pageTitle');

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <LocaleContext value={locale}>
        <App />
      </LocaleContext>
    </StrictMode>,
  );
}
