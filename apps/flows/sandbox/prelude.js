// Evaluated in every new sandbox context before the builder's script (see worker.py).
//
// It defines the script's globals debug(), console.log() and error(), and the entry points the
// worker calls. The worker takes the entry points and deletes them from the global object, so a
// script can neither see nor replace them. Intrinsics are captured first so a script that
// overwrites JSON or String breaks only itself, not the plumbing. Results and debug lines leave
// as JSON text: JSON.stringify escapes lone surrogates, which Python's UTF-8 decoding rejects.
(function () {
  'use strict';
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const toText = String;
  const toNumber = Number;
  const isFiniteNumber = Number.isFinite;
  const isArray = Array.isArray;
  const ErrorType = Error;
  const InternalErrorType = InternalError;
  const PromiseType = Promise;
  const promiseThen = Promise.prototype.then;
  const apply = Reflect.apply;
  // Called under another name, eval is indirect: it sees the global scope only, which is where
  // the builder's functions live (including `const main = ...`, which is not on globalThis).
  const globalLookup = eval;
  const MAX_LINES = 1000;
  const MAX_CHARS = 65536;
  const ABORT_STATUS = Symbol('flowsite abort status');

  let lines = [];
  let chars = 0;
  let truncated = false;
  // null until the called function has returned or its promise has settled.
  let outcome = null;

  function describe(value) {
    try {
      if (typeof value === 'string') return value;
      if (value instanceof ErrorType) return toText(value.name) + ': ' + toText(value.message);
      if (value !== null && typeof value === 'object') {
        const text = stringify(value);
        if (text !== undefined) return text;
      }
      return toText(value);
    } catch (ignored) {
      try {
        return toText(value);
      } catch (alsoIgnored) {
        return '[unprintable value]';
      }
    }
  }

  function debug(...args) {
    if (truncated) return;
    let line = '';
    for (let i = 0; i < args.length; i++) line += (i === 0 ? '' : ' ') + describe(args[i]);
    if (lines.length < MAX_LINES && chars + line.length <= MAX_CHARS) {
      lines[lines.length] = line;
      chars += line.length;
      return;
    }
    if (lines.length < MAX_LINES && chars < MAX_CHARS) {
      lines[lines.length] = line.slice(0, MAX_CHARS - chars);
    }
    lines[lines.length] =
      '… truncated (debug output is limited to ' + MAX_LINES + ' lines and ' + MAX_CHARS +
      ' characters per call)';
    truncated = true;
  }

  function error(message, status) {
    const abort = new ErrorType(message === undefined ? 'The script failed the run' : describe(message));
    abort[ABORT_STATUS] = status === undefined ? 500 : status;
    throw abort;
  }

  function takeLines() {
    const taken = lines;
    lines = [];
    chars = 0;
    truncated = false;
    return taken;
  }

  function describeThrown(thrown) {
    try {
      // QuickJS throws null when it cannot even allocate the "out of memory" error; a
      // script may throw null too, and nothing tells the two apart: say both.
      if (thrown === null) {
        return {
          kind: 'error',
          message: 'Uncaught null (thrown by the script, or by QuickJS when the script ran ' +
            'out of memory so completely that it could not even make the error)',
        };
      }
      if (thrown instanceof InternalErrorType && thrown.message === 'out of memory') {
        return {kind: 'memory'};
      }
      if (thrown instanceof ErrorType) {
        const stack = typeof thrown.stack === 'string' ? thrown.stack : '';
        if (ABORT_STATUS in thrown) {
          return {
            kind: 'abort',
            message: toText(thrown.message),
            status: toNumber(thrown[ABORT_STATUS]),
            stack: stack,
          };
        }
        return {kind: 'error', message: describe(thrown), stack: stack};
      }
      return {kind: 'error', message: 'Uncaught ' + describe(thrown)};
    } catch (ignored) {
      return {kind: 'error', message: 'Uncaught exception'};
    }
  }

  // Calls the global function `name` with the parsed argument and records the outcome. A promise
  // result is followed; the worker runs the pending jobs before calling __flowsite_finish.
  function __flowsite_start(name, argumentJson) {
    outcome = null;
    let fn;
    try {
      fn = globalLookup(name);
    } catch (ignored) {
      fn = undefined;
    }
    if (typeof fn !== 'function') {
      outcome = {missing: true};
      return;
    }
    try {
      const result = fn(parse(argumentJson));
      if (result instanceof PromiseType) {
        apply(promiseThen, result, [
          function (value) {
            outcome = {value: value};
          },
          function (thrown) {
            outcome = {thrown: thrown};
          },
        ]);
      } else {
        outcome = {value: result};
      }
    } catch (thrown) {
      outcome = {thrown: thrown};
    }
  }

  // An answer whose statusCode is NaN or Infinity (a failed parseInt, say): JSON would turn it
  // into null, and the object into a record answered 200, so the failure would pass for a
  // success.
  // The engine takes one record alone as the answer too (runner.script_response).
  function answersNoStatus(value) {
    if (isArray(value) && value.length === 1) value = value[0];
    if (value === null || typeof value !== 'object') return false;
    const status = value.statusCode;
    return typeof status === 'number' && !isFiniteNumber(status);
  }

  // Returns the envelope (JSON, never containing a newline), a newline, then the value's JSON.
  function __flowsite_finish() {
    let envelope;
    let valueText = '';
    if (outcome === null) {
      envelope = {
        kind: 'error',
        message:
          'The function returned a promise that never settled: it waits for something that ' +
          'cannot happen inside a script.',
      };
    } else if (outcome.missing) {
      envelope = {kind: 'missing_function'};
    } else if ('thrown' in outcome) {
      envelope = describeThrown(outcome.thrown);
    } else if (typeof outcome.value === 'function' || typeof outcome.value === 'symbol') {
      envelope = {
        kind: 'invalid_return',
        message: 'The function returned a ' + typeof outcome.value + ', which is not JSON.',
      };
    } else if (answersNoStatus(outcome.value)) {
      envelope = {
        kind: 'invalid_return',
        message: 'The function answered statusCode ' + toText(outcome.value.statusCode) +
          ', which is not an HTTP status: answer with 200-599.',
      };
    } else {
      try {
        valueText = stringify(outcome.value);
        envelope = {kind: 'ok'};
      } catch (thrown) {
        envelope = describeThrown(thrown);
        if (envelope.kind === 'error') {
          envelope = {
            kind: 'invalid_return',
            message: 'The function returned a value that cannot be converted to JSON: ' +
              envelope.message,
          };
        }
      }
      if (valueText === undefined) valueText = 'null';
    }
    outcome = null;
    envelope.debug = takeLines();
    return stringify(envelope) + '\n' + valueText;
  }

  // After a timeout or another failure outside __flowsite_finish: the lines logged so far.
  function __flowsite_take_debug() {
    return stringify(takeLines());
  }

  globalThis.debug = debug;
  globalThis.console = {log: debug, info: debug, warn: debug, error: debug, debug: debug};
  globalThis.error = error;
  globalThis.__flowsite_start = __flowsite_start;
  globalThis.__flowsite_finish = __flowsite_finish;
  globalThis.__flowsite_take_debug = __flowsite_take_debug;
})();
