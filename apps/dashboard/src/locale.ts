/** The translator for the dashboard's language, which main.tsx chooses once per page load. */
import { createContext, useContext } from 'react';
import { agentTranslator, type AgentTranslator } from '@callchart/machines/locales';

export const LocaleContext = createContext<AgentTranslator>(agentTranslator('en'));

export const useLocale = (): AgentTranslator => useContext(LocaleContext);
