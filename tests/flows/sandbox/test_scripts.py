"""What a builder's script sees and what its call gives back (apps.flows.sandbox)."""

import pickle

import pytest

from apps.flows.sandbox import ScriptAbort, ScriptError, ScriptResult, check_syntax

GREETING = (
    "function main(ctx) { return {statusCode: 200, result: 'Hello ' + "
    "ctx.trigger.args.request.query.name} }"
)


def test_the_axway_greeting_returns_its_status_code_and_greeting(pool):
    argument = {"trigger": {"args": {"request": {"query": {"name": "Leor"}}}}}

    result = pool.call(GREETING, "main", argument)

    assert result == ScriptResult(value={"statusCode": 200, "result": "Hello Leor"}, debug=[])


def test_a_function_other_than_main_can_be_called(pool):
    source = "function main(ctx) { return 'main' }\nfunction shout(ctx) { return ctx.word + '!' }"

    assert pool.call(source, "shout", {"word": "hey"}).value == "hey!"


def test_functions_bound_with_const_and_async_functions_can_be_called(pool):
    source = """
const helper = (n) => n * 2;
const double = (ctx) => helper(ctx.n);
async function later(ctx) {
  const n = await Promise.resolve(ctx.n);
  return {n: double({n})};
}
"""
    assert pool.call(source, "double", {"n": 21}).value == 42
    assert pool.call(source, "later", {"n": 4}).value == {"n": 8}


def test_calling_a_function_the_script_does_not_define_raises_missing_function(pool):
    with pytest.raises(ScriptError) as raised:
        pool.call("function main() {}\nvar notAFunction = 1", "mian", {})
    assert raised.value.kind == "missing_function"
    assert raised.value.message == "The script does not define a function named 'mian'."

    with pytest.raises(ScriptError) as raised:
        pool.call("function main() {}\nvar notAFunction = 1", "notAFunction", {})
    assert raised.value.kind == "missing_function"


def test_a_function_name_that_is_not_an_identifier_is_refused_before_anything_runs(pool):
    with pytest.raises(ScriptError) as raised:
        pool.call("function main() {}", "main(); while (true) {}", {})

    assert raised.value.kind == "missing_function"
    assert pool.pids() == []  # not even a sandbox process was needed


def test_debug_and_console_log_lines_are_returned_in_order(pool):
    source = """
function main(ctx) {
  debug('start', 1, {a: [1, 2]}, null, undefined);
  console.log('via console', ctx.n);
  console.error(new TypeError('shown, not thrown'));
  return ctx.n;
}
"""
    result = pool.call(source, "main", {"n": 7})

    assert result.value == 7
    assert result.debug == [
        'start 1 {"a":[1,2]} null undefined',
        "via console 7",
        "TypeError: shown, not thrown",
    ]
    assert pool.call(source, "main", {"n": 8}).debug[1] == "via console 8"  # no carry-over


def test_debug_output_is_cut_off_with_a_final_truncated_line(pool):
    many_lines = "function main() { for (let i = 0; i < 5000; i++) debug('line', i) }"
    huge_line = "function main() { debug('x'.repeat(100000)); debug('never shown') }"

    lines = pool.call(many_lines, "main", None).debug
    assert len(lines) == 1001
    assert lines[999] == "line 999"
    assert lines[-1].startswith("… truncated")

    lines = pool.call(huge_line, "main", None).debug
    assert len(lines[0]) == 65536
    assert len(lines) == 2
    assert lines[-1].startswith("… truncated")


def test_error_aborts_the_run_with_the_status_and_message_given(pool):
    source = """function main(ctx) {
  debug('checking');
  if (!ctx.name) error('Bad input', 422);
  return 'fine';
}"""
    with pytest.raises(ScriptAbort) as raised:
        pool.call(source, "main", {})

    assert raised.value.kind == "abort"
    assert raised.value.status == 422
    assert raised.value.message == "Bad input"
    assert raised.value.line == 3
    assert raised.value.debug == ["checking"]


def test_error_without_a_valid_error_status_aborts_with_500(pool):
    for call in ("error('Nope')", "error('Nope', 200)", "error('Nope', 'teapot')"):
        with pytest.raises(ScriptAbort) as raised:
            pool.call(f"function main() {{ {call} }}", "main", {})
        assert (raised.value.status, raised.value.message) == (500, "Nope")


def test_a_throw_reports_its_message_and_the_line_of_the_builders_source(pool):
    source = """function main(ctx) {
  debug('about to fail');
  return ctx.missing.x;
}"""
    with pytest.raises(ScriptError) as raised:
        pool.call(source, "main", {})

    assert raised.value.kind == "error"
    assert raised.value.message == "TypeError: cannot read property 'x' of undefined"
    assert raised.value.line == 3
    assert raised.value.debug == ["about to fail"]


def test_a_throw_deep_in_helpers_or_after_an_await_reports_the_line_where_it_happened(pool):
    source = """function check(value) {
  if (value < 0) {
    throw new RangeError('negative: ' + value);
  }
}
const oneLiner = () => { throw new Error('on one line') };
async function main(ctx) {
  await null;
  if (ctx.which === 'one') oneLiner();
  check(ctx.n);
}"""
    with pytest.raises(ScriptError) as raised:
        pool.call(source, "main", {"n": -1})
    assert (raised.value.message, raised.value.line) == ("RangeError: negative: -1", 3)

    with pytest.raises(ScriptError) as raised:
        pool.call(source, "main", {"which": "one"})
    assert (raised.value.message, raised.value.line) == ("Error: on one line", 6)


def test_a_throw_in_top_level_code_reports_its_line(pool):
    source = "var config = {};\n\nvar port = config.server.port;\nfunction main() {}"

    with pytest.raises(ScriptError) as raised:
        pool.call(source, "main", {})

    assert raised.value.kind == "error"
    assert raised.value.message == "TypeError: cannot read property 'port' of undefined"
    assert raised.value.line == 3


def test_throwing_something_that_is_not_an_error_is_reported_as_uncaught(pool):
    with pytest.raises(ScriptError) as raised:
        pool.call("function main() { throw {code: 7} }", "main", {})

    assert raised.value.kind == "error"
    assert raised.value.message == 'Uncaught {"code":7}'


def test_throwing_null_is_not_reported_as_the_memory_limit(pool):
    """An outside probe found `throw null` reported as "exceeded its memory limit", which
    sent the builder off to raise a limit."""
    with pytest.raises(ScriptError) as raised:
        pool.call("function main() { throw null }", "main", {})

    assert raised.value.kind == "error"
    assert raised.value.message.startswith("Uncaught null")
    assert "exceeded its memory limit" not in raised.value.message


def test_check_syntax_reports_the_message_and_line(global_pool):
    source = "function main(ctx) {\n  var total = 1 +\n  foo(1, );\n  return );\n}"

    assert check_syntax(source) == "SyntaxError: unexpected token in expression: ')' (line 4)"
    assert check_syntax("(" * 100_000).startswith("SyntaxError: ")


def test_check_syntax_accepts_valid_sources_without_running_them(global_pool):
    assert check_syntax(GREETING) is None
    assert check_syntax("while (true) {}\nthrow new Error('never run')") is None
    assert check_syntax("let a = 1; const b = 2; class C {}") is None
    assert check_syntax("'use strict';\nwith (Math) { max(1, 2) }") == (
        "SyntaxError: invalid keyword: with (line 2)"
    )


def test_calling_a_script_with_a_syntax_error_raises_syntax(pool):
    source = "function main(ctx) {\n  return {a: 1,, b: 2};\n}"

    with pytest.raises(ScriptError) as raised:
        pool.call(source, "main", {})

    assert raised.value.kind == "syntax"
    assert raised.value.line == 2
    assert raised.value.message.startswith("SyntaxError: ")
    assert raised.value.message.endswith(" (line 2)")


def test_a_syntax_error_thrown_at_run_time_is_an_error_not_a_syntax_problem(pool):
    source = "function main(ctx) {\n  return JSON.parse(ctx.text);\n}"

    with pytest.raises(ScriptError) as raised:
        pool.call(source, "main", {"text": "{"})

    assert raised.value.kind == "error"
    assert raised.value.message.startswith("SyntaxError: ")
    assert raised.value.line == 2


def test_the_argument_arrives_as_json_and_the_result_leaves_as_json(pool):
    source = """function main(ctx) {
  return {echo: ctx, nothing: undefined, when: new Date(Date.UTC(2024, 0, 2)), nan: NaN};
}"""
    argument = {"text": "héllo ☃ 😀", "list": [1, 2.5, None, True], "nested": {"a": {"b": []}}}

    value = pool.call(source, "main", argument).value

    assert value == {"echo": argument, "when": "2024-01-02T00:00:00.000Z", "nan": None}


def test_returning_undefined_gives_none(pool):
    assert pool.call("function main() {}", "main", {}).value is None


def test_results_that_are_not_json_raise_invalid_return(pool):
    for expression in ("(() => { const o = {}; o.self = o; return o })()", "10n", "() => 1"):
        with pytest.raises(ScriptError) as raised:
            pool.call(f"function main() {{ return {expression} }}", "main", {})
        assert raised.value.kind == "invalid_return"


@pytest.mark.parametrize("status", ["NaN", "parseInt('abc')", "1 / 0", "-Infinity"])
@pytest.mark.parametrize("shape", ["{answer}", "[{answer}]"])  # one record alone answers too
def test_an_answer_whose_status_is_not_a_number_is_an_invalid_return(pool, status, shape):
    """JSON turned the status into null, and the answer into a record: a 200 "succeeded"."""
    answer = shape.replace("{answer}", f"{{statusCode: {status}, body: {{}}}}")
    with pytest.raises(ScriptError) as raised:
        pool.call(f"function main() {{ return {answer} }}", "main", {})

    assert raised.value.kind == "invalid_return"
    assert "which is not an HTTP status: answer with 200-599" in raised.value.message


def test_host_apis_and_modules_are_not_available(pool):
    source = """function main() {
  return [typeof require, typeof process, typeof fetch, typeof XMLHttpRequest, typeof std,
          typeof os, typeof module, typeof exports, typeof __flowsite_start];
}
async function load() { return await import('os') }"""

    assert set(pool.call(source, "main", {}).value) == {"undefined"}
    with pytest.raises(ScriptError) as raised:
        pool.call(source, "load", {})
    assert raised.value.kind == "error"
    assert "could not load module 'os'" in raised.value.message


def test_overwriting_builtins_breaks_only_the_script_not_the_plumbing(pool):
    source = "JSON.stringify = () => 'hacked'; String = null;\nfunction main() { return [1] }"

    assert pool.call(source, "main", {}).value == [1]


def test_script_errors_survive_pickling_for_celery():
    def roundtrip(error: ScriptError) -> ScriptError:
        return pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

    abort = roundtrip(ScriptAbort("Bad", status=422, line=3, debug=["a"]))
    error = roundtrip(ScriptError("Boom", kind="timeout", line=None))

    assert (type(abort), abort.message, abort.status, abort.line, abort.debug) == (
        ScriptAbort,
        "Bad",
        422,
        3,
        ["a"],
    )
    assert (type(error), error.message, error.kind, str(error)) == (
        ScriptError,
        "Boom",
        "timeout",
        "Boom",
    )
