import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { repeatedKeys } from '../../test/support/jsonKeys.ts';
import { callLogger, createLogger, requestLogger } from './logger.ts';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; raw: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    stream,
    raw: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== ''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes JSON lines at or above its level, with callId on everything a call logger writes', () => {
    const { stream, lines } = capture();
    const logger = createLogger('info', stream);
    logger.debug('hidden');
    const call = callLogger(logger, 'call-7', { requestId: 'req-3' });
    call.info({ leg: 'agent', attempt: 2 }, 'reconnection attempt');
    call.child({ leg: 'visitor' }).warn('leg lost');
    requestLogger(logger, 'req-3').info('reassigning');

    expect(lines()).toEqual([
      expect.objectContaining({ level: 30, msg: 'reconnection attempt', callId: 'call-7', requestId: 'req-3', leg: 'agent', attempt: 2, service: 'callchart' }),
      expect.objectContaining({ level: 40, msg: 'leg lost', callId: 'call-7', leg: 'visitor' }),
      expect.objectContaining({ level: 30, msg: 'reassigning', requestId: 'req-3' }),
    ]);
    expect(lines()[2]).not.toHaveProperty('callId');
  });

  it('redacts credentials', () => {
    const { stream, lines } = capture();
    const logger = createLogger('info', stream);
    logger.info({ password: 'pw', token: 'tk', body: { password: 'pw2' }, headers: { authorization: 'Bearer tk' } }, 'login');
    const text = JSON.stringify(lines());
    expect(text).not.toMatch(/pw|tk/);
    expect(lines()[0]).toMatchObject({ password: '[redacted]', token: '[redacted]', body: { password: '[redacted]' } });
  });

  it('writes each key once: the logger’s bindings win over the logged object, and a child’s over its parent’s', () => {
    const { stream, lines, raw } = capture();
    const logger = createLogger('info', stream);
    const request = requestLogger(logger, 'req-3');
    request.info({ requestId: 'req-3', to: 'ringing' }, 'routing searching -> ringing');
    callLogger(request, 'call-7', { requestId: 'req-3' }).info({ callId: 'call-7', leg: 'agent' }, 'leg lost');
    callLogger(logger, 'call-7').child({ callId: 'call-8' }).warn('handed on');
    logger.info({ service: 'other', level: 'loud', time: 1, msg: 'inner', kept: true }, 'outer');
    logger.info({ msg: 'only the object says it' });
    request.child({ token: 'tk' }).info('bound secret');

    expect(raw().flatMap((line) => repeatedKeys(line).map((key) => `${key} in ${line}`))).toEqual([]);
    expect(lines()).toEqual([
      expect.objectContaining({ requestId: 'req-3', to: 'ringing', msg: 'routing searching -> ringing' }),
      expect.objectContaining({ requestId: 'req-3', callId: 'call-7', leg: 'agent', msg: 'leg lost' }),
      expect.objectContaining({ level: 40, callId: 'call-8', msg: 'handed on' }),
      expect.objectContaining({ level: 30, service: 'callchart', msg: 'outer', kept: true }),
      expect.objectContaining({ msg: 'only the object says it' }),
      expect.objectContaining({ requestId: 'req-3', token: '[redacted]', msg: 'bound secret' }),
    ]);
    expect(raw().join('\n')).not.toContain('tk');
  });
});
