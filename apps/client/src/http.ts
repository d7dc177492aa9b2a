/**
 * The one HTTP client of the apps: it sends a protocol route's request and checks the answer against the
 * route's schema (machines/src/http.ts), so a caller gets the typed body or an `HttpRequestError`, never
 * an unchecked guess. What a failure means to a person is the caller's to say.
 */
import { z } from 'zod/mini';
import { HttpErrorBody, routePath, type HttpRoute, type RouteInput, type RouteOutput } from '@callchart/machines';

export interface HttpClientOptions {
  /** Where the server is; '' (the default) for the page's own origin. */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer` to every route that needs it. */
  token?: string;
}

/**
 * Why a request failed: `unreachable` when no answer came, `refused` when the server answered an error
 * status, `malformed` when the answer is not what the route's schema says.
 */
export type HttpFailure = 'unreachable' | 'refused' | 'malformed';

export class HttpRequestError extends Error {
  override readonly name = 'HttpRequestError';
  constructor(
    message: string,
    readonly failure: HttpFailure,
    /** The answer's status; null when none came. */
    readonly status: number | null,
    /** The server's error body, when it sent a readable one. */
    readonly error: HttpErrorBody['error'] | null,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A download's content and the file name the server gave it. */
export interface Download {
  blob: Blob;
  filename: string | null;
}

export interface HttpClient {
  /** Sends the request; resolves to the answer's body as the route's schema reads it. */
  request<R extends HttpRoute>(route: R, ...input: InputArgs<R>): Promise<RouteOutput<R>>;
  /** For a route answered as an attachment: its content, whatever the media type the request chose. */
  download<R extends HttpRoute & { attachment: true }>(route: R, ...input: InputArgs<R>): Promise<Download>;
}

// A route that takes nothing may be called without an input.
type InputArgs<R extends HttpRoute> = Record<never, never> extends RouteInput<R> ? [input?: RouteInput<R>] : [input: RouteInput<R>];

interface AnyInput {
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: unknown;
}

const FILENAME = /filename="?([^";]+)"?/i;

export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const { baseUrl = '', token } = options;

  async function send(route: HttpRoute, input: AnyInput = {}): Promise<Response> {
    const what = `${route.method} ${route.path}`;
    let url = `${baseUrl}${routePath(route, input.params)}`;
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(input.query ?? {})) if (value !== undefined) query.set(key, String(value));
    if (query.size > 0) url += `?${query.toString()}`;
    const headers = new Headers();
    if (route.auth === 'agent' && token !== undefined) headers.set('Authorization', `Bearer ${token}`);
    if (route.body) headers.set('Content-Type', 'application/json');

    let response: Response;
    try {
      response = await fetch(url, { method: route.method, headers, ...(route.body ? { body: JSON.stringify(input.body ?? {}) } : {}) });
    } catch (cause) {
      throw new HttpRequestError(`${what} got no answer`, 'unreachable', null, null, { cause });
    }
    if (response.ok) return response;
    const error = z.safeParse(HttpErrorBody, await response.json().catch(() => null));
    const body = error.success ? error.data.error : null;
    throw new HttpRequestError(body?.message ?? `${what} answered ${String(response.status)}`, 'refused', response.status, body);
  }

  return {
    async request(route, ...[input]) {
      const response = await send(route, input as AnyInput | undefined);
      const what = `${route.method} ${route.path}`;
      const text = await response.text();
      let json: unknown;
      try {
        json = route.media === 'application/json' ? JSON.parse(text) : text;
      } catch (cause) {
        throw new HttpRequestError(`${what} answered with a body that is not JSON`, 'malformed', response.status, null, { cause });
      }
      const parsed = z.safeParse(route.response, json);
      if (!parsed.success) {
        throw new HttpRequestError(`${what} answered with a body its schema refuses`, 'malformed', response.status, null, { cause: parsed.error });
      }
      return parsed.data as RouteOutput<typeof route>;
    },
    async download(route, ...[input]) {
      const response = await send(route, input as AnyInput | undefined);
      const filename = FILENAME.exec(response.headers.get('Content-Disposition') ?? '')?.[1] ?? null;
      return { blob: await response.blob(), filename };
    },
  };
}
