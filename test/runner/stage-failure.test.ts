// What a thrown value means as a stage failure, and that the failure is plain data (it crosses a
// worker's IPC channel, which uses the structured clone algorithm, unchanged).
import { describe, expect, it } from 'vitest';
import { InputError, StageError } from '../../stages/contract.js';
import { failureOf, LOG_TAIL, stageFailure, withLog } from '../../runner/stage-failure.js';

describe('stage failures', () => {
  it('InputError is an input failure, with the file it names; StageError is a stage failure; both keep their own tail', () => {
    expect(failureOf(new InputError('d/x.jpg is not an image', [], 'd/x.jpg'))).toEqual({
      reason: 'input',
      message: 'd/x.jpg is not an image',
      logTail: [],
      path: 'd/x.jpg',
    });
    expect(failureOf(new InputError('no train split'))).toEqual({
      reason: 'input',
      message: 'no train split',
      logTail: [],
    });
    expect(failureOf(new StageError('command exited with code 3: broken', ['broken']))).toEqual({
      reason: 'stage',
      message: 'command exited with code 3: broken',
      logTail: ['broken'],
    });
  });

  it('anything else is internal: "internal error: …" and the stack for whoever debugs it', () => {
    const bug = new TypeError('x is undefined');
    const f = failureOf(bug);
    expect(f.reason).toBe('internal');
    expect(f.message).toBe('internal error: x is undefined');
    expect(f.logTail[0]).toBe('TypeError: x is undefined');
    expect(f.logTail.slice(1).every((l) => /^\s+at /.test(l))).toBe(true);
    expect(failureOf('a string thrown')).toMatchObject({
      reason: 'internal',
      message: 'internal error: a string thrown',
    });
  });

  it("the runner's log of the stage goes in front of the failure's own tail, keeping the last LOG_TAIL lines", () => {
    const log = Array.from({ length: LOG_TAIL }, (_, i) => `line ${i}`);
    const f = withLog(stageFailure('stage', 'failed', ['stderr 1', 'stderr 2']), log);
    expect(f.logTail).toHaveLength(LOG_TAIL);
    expect(f.logTail.slice(-3)).toEqual([`line ${LOG_TAIL - 1}`, 'stderr 1', 'stderr 2']);
    expect(f.logTail[0]).toBe('line 2');
  });

  it('survives the structured clone of an IPC message unchanged', () => {
    const f = failureOf(new InputError('bad', ['a', 'b'], 'x.csv'));
    expect(structuredClone(f)).toEqual(f);
    expect(Object.getPrototypeOf(structuredClone(f))).toBe(Object.prototype);
  });
});
