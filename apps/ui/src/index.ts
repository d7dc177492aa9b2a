export { Login, type LoginProps, type LoginWords } from './Login.tsx';
export { LoginError, sessionStore, type AgentSession, type LoginFailure, type SessionStore, type SessionStoreOptions } from './session.ts';
export { Video, type VideoProps } from './Video.tsx';
