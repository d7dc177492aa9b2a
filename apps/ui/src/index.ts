export { Login, type LoginProps, type LoginWords } from './Login.tsx';
export { authorized, LoginError, sessionStore, UnauthorizedError, type AgentSession, type LoginFailure, type SessionStore, type SessionStoreOptions } from './session.ts';
export { CallOverlay, CallStage, type CallStageProps } from './CallStage.tsx';
export { Video, type VideoProps } from './Video.tsx';
