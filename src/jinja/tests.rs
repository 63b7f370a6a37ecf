//! One test per construct: Jinja2 source -> lowered tera -> rendered value, through the
//! Templar (Jinja2 parsed, checked, lowered, compiled by tera, rendered).
use serde_json::{json, Value};
use tera::Context;

use super::lower::{lower, Output};
use crate::template::Templar;

fn vars() -> Value {
    json!({
        "s": "abc", "n": 5, "f": 2.5, "xs": [1, 2, 3], "names": ["a", "b"],
        "d": {"a": 1, "b": {"c": "deep"}, "x-y": 7}, "t": true, "no": false, "empty": "",
        "users": [{"name": "ann", "on": true}, {"name": "bob", "on": false}],
        "svc": "pg", "units": {"pg.service": "up"}, "key": "a", "none": null
    })
}

fn ctx() -> Context {
    Context::from_value(vars()).unwrap()
}

/// Render as text.
fn r(src: &str) -> String {
    Templar::new()
        .render_str(src, &ctx())
        .unwrap_or_else(|e| panic!("{src}: {e}\nlowered: {}", lowered(src)))
}

/// Render a lone expression to its value.
fn v(src: &str) -> Value {
    Templar::new()
        .render_string_value(&format!("{{{{ {src} }}}}"), &ctx())
        .unwrap_or_else(|e| {
            panic!(
                "{src}: {e}\nlowered: {}",
                lowered(&format!("{{{{ {src} }}}}"))
            )
        })
}

fn cond(expr: &str) -> bool {
    Templar::new()
        .eval_cond(expr, &ctx())
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn lowered(src: &str) -> String {
    super::template::parse(src, false)
        .map_err(|e| e.render(src))
        .and_then(|n| lower(&n, Output::Text).map_err(|e| e.render(src)))
        .unwrap_or_else(|e| format!("(no lowering: {e})"))
}

fn err(src: &str) -> String {
    Templar::new().check(src).unwrap_err()
}

#[test]
fn literals() {
    assert_eq!(v("'it\\'s'"), json!("it's"));
    assert_eq!(v("\"a\" 'b'"), json!("ab"));
    assert_eq!(v("42"), json!(42));
    assert_eq!(v("-1.5"), json!(-1.5));
    assert_eq!(v("[1, 'a', [true, none]]"), json!([1, "a", [true, null]]));
    assert_eq!(v("(1, 2)"), json!([1, 2]));
    assert_eq!(v("{'a': 1, 'b': [s]}"), json!({"a": 1, "b": ["abc"]}));
    assert_eq!(v("True"), json!(true));
    assert_eq!(v("None"), json!(null));
    assert_eq!(v("'q\"u`o\\'te'"), json!("q\"u`o'te"));
}

#[test]
fn attributes_subscripts_slices() {
    assert_eq!(v("d.b.c"), json!("deep"));
    assert_eq!(v("d['b']['c']"), json!("deep"));
    assert_eq!(v("d['x-y']"), json!(7));
    assert_eq!(v("d[key]"), json!(1));
    assert_eq!(v("units[svc + '.service']"), json!("up"));
    assert_eq!(v("xs[-1]"), json!(3));
    assert_eq!(v("xs[1:]"), json!([2, 3]));
    assert_eq!(v("xs[::-1]"), json!([3, 2, 1]));
    assert_eq!(v("s[:2]"), json!("ab"));
    assert_eq!(v("users[0].name"), json!("ann"));
    assert_eq!(v("(d.b).c"), json!("deep"));
}

#[test]
fn operators() {
    assert_eq!(v("n + 1"), json!(6));
    assert_eq!(v("s + 'd'"), json!("abcd"));
    assert_eq!(v("xs + [4]"), json!([1, 2, 3, 4]));
    assert_eq!(v("n - 2 * 2"), json!(1));
    assert_eq!(v("7 // 2"), json!(3));
    assert_eq!(v("7 % 3"), json!(1));
    assert_eq!(v("2 ** 10"), json!(1024));
    assert_eq!(v("s ~ n ~ t"), json!("abc5True"));
    assert_eq!(v("-n"), json!(-5));
    assert_eq!(v("(n + 1) * 2"), json!(12));
}

#[test]
fn comparisons_and_logic() {
    assert!(cond("n == 5"));
    assert!(cond("n != 4"));
    assert!(cond("1 < n <= 5"));
    assert!(!cond("1 < n < 5"));
    assert!(cond("'b' > 'a'"));
    assert!(cond("'a' in names"));
    assert!(cond("'z' not in names"));
    assert!(cond("'b' in s"));
    assert!(cond("'a' in d"));
    assert!(cond("not no"));
    assert!(cond("t and not no"));
    assert!(cond("no or t"));
    // Python values, not booleans; the right side is lazy.
    assert_eq!(v("empty or 'fallback'"), json!("fallback"));
    assert_eq!(v("s and n"), json!(5));
    assert!(!cond("missing is defined and missing.x == 1"));
    assert!(cond("t or missing.x"));
}

#[test]
fn inline_if_is_lazy() {
    assert_eq!(v("'on' if t else 'off'"), json!("on"));
    assert_eq!(v("'on' if no else 'off'"), json!("off"));
    assert_eq!(v("missing.x if no else 1"), json!(1));
    assert_eq!(r("[{{ 'x' if no }}]"), "[]");
}

#[test]
fn filters_anywhere() {
    assert_eq!(v("s | upper"), json!("ABC"));
    assert_eq!(v("(s | upper) ~ '!'"), json!("ABC!"));
    assert_eq!(v("not (t | bool)"), json!(false));
    assert_eq!(v("(s | length) + 1"), json!(4));
    assert_eq!(v("('{\"k\": 3}' | from_json).k"), json!(3));
    assert_eq!(v("s | ansible.builtin.upper"), json!("ABC"));
    assert_eq!(v("xs | join(sep='-')"), json!("1-2-3"));
    assert_eq!(v("s | replace(from='b', to='B')"), json!("aBc"));
}

#[test]
fn default_forms() {
    assert_eq!(v("missing | default('x')"), json!("x"));
    assert_eq!(v("missing | d('x')"), json!("x"));
    assert_eq!(v("missing.deep | default([])"), json!([]));
    assert_eq!(v("d.nope | default(d.a)"), json!(1));
    assert_eq!(v("missing | default(value='tera')"), json!("tera"));
    assert_eq!(v("empty | default('e', true)"), json!("e"));
    assert_eq!(v("empty | default('e')"), json!(""));
    assert_eq!(v("xs[7] | default('none')"), json!("none"));
    assert_eq!(v("(missing | default({})).get('a', 2)"), json!(2));
}

#[test]
fn tests_with_arguments() {
    assert!(cond("missing is not defined"));
    assert!(cond("d.a is defined"));
    assert!(cond("n is divisibleby 5"));
    assert!(cond("n is divisibleby(5)"));
    assert!(cond("n is not even"));
    assert!(cond("(n + 1) is even"));
    assert!(cond("s is matching('^a')"));
    assert!(cond("s is ansible.builtin.string"));
}

#[test]
fn method_calls() {
    assert_eq!(v("d.get('a')"), json!(1));
    assert_eq!(v("d.get('zz', 9)"), json!(9));
    assert_eq!(v("'a,b'.split(',')"), json!(["a", "b"]));
    assert_eq!(v("', '.join(names)"), json!("a, b"));
    assert_eq!(v("s.startswith('ab')"), json!(true));
    assert_eq!(v("d.keys() | length"), json!(3));
}

#[test]
fn functions_keep_tera_names() {
    assert_eq!(v("range(end=3)"), json!([0, 1, 2]));
}

#[test]
fn output_is_python_str() {
    assert_eq!(r("{{ names }}"), "['a', 'b']");
    // Ansible's finalize: None prints as nothing (inside a list it is `None`).
    assert_eq!(
        r("{{ t }}/{{ none }}/{{ f }}/{{ [none] }}"),
        "True//2.5/[None]"
    );
    assert_eq!(r("{{ {'a': 1} }}"), "{'a': 1}");
}

#[test]
fn statements() {
    assert_eq!(
        r("{% if n > 9 %}big{% elif n > 3 %}mid{% else %}small{% endif %}"),
        "mid"
    );
    assert_eq!(r("{% for x in xs %}{{ x }}{% endfor %}"), "123");
    assert_eq!(
        r("{% for x in xs %}{{ loop.index }}/{{ loop.length }}/{{ loop.revindex }}{% if not loop.last %},{% endif %}{% endfor %}"),
        "1/3/3,2/3/2,3/3/1"
    );
    assert_eq!(
        r("{% for u in users if u.on %}{{ u.name }}{{ loop.length }}{% endfor %}"),
        "ann1"
    );
    assert_eq!(
        r("{% for k, v in d.items() if k != 'b' %}{{ k }}={{ v }};{% endfor %}"),
        "a=1;x-y=7;"
    );
    assert_eq!(r("{% for k, v in d %}{{ k }};{% endfor %}"), "a;b;x-y;");
    assert_eq!(r("{% for k in d %}{{ k }};{% endfor %}"), "a;b;x-y;");
    assert_eq!(r("{% for x in [] %}a{% else %}none{% endfor %}"), "none");
    assert_eq!(
        r("{% for x in xs %}{{ loop.cycle('o', 'e') }}{% endfor %}"),
        "oeo"
    );
    assert_eq!(r("{% set y = n * 2 %}{{ y }}"), "10");
    assert_eq!(
        r("{% raw %}{{ not rendered }}{% endraw %}"),
        "{{ not rendered }}"
    );
    assert_eq!(r("a{# comment #}b"), "ab");
    assert_eq!(r("{% block head %}<{{ s }}>{% endblock head %}"), "<abc>");
    assert_eq!(r("a  {{- s -}}  b"), "aabcb");
    assert_eq!(
        r("{% for x in xs %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
        "1"
    );
}

#[test]
fn trim_blocks_for_template_files() {
    let t = Templar::new();
    let src = "{% for x in xs %}\n{{ x }}\n{% endfor %}\n{# c #}\nend\n{% raw %}\n{{ r }}\n{% endraw %}\nz\n";
    assert_eq!(
        t.render_template_file(src, &ctx()).unwrap(),
        "1\n2\n3\nend\n\n{{ r }}\nz\n"
    );
    assert_eq!(
        t.render_template_file("{% if t +%}\nx{% endif %}", &ctx())
            .unwrap(),
        "\nx"
    );
}

#[test]
fn tera_syntax_still_renders() {
    assert_eq!(r(r#"{{ s | replace(from='\', to='\\') }}"#), "abc");
    assert_eq!(r("{% for k, v in d %}{{ k }}{% endfor %}"), "abx-y");
}

#[test]
fn names_walk_the_jinja_tree() {
    let t = Templar::new();
    let n = t
        .names("{% for u in users if u.on %}{{ u.name ~ prefix }}{% endfor %}{{ x | d(y) }}{{ hostvars[item].a }}{{ z is defined }}{{ lookupless.get('k') }}")
        .unwrap();
    assert_eq!(
        n.required,
        vec!["hostvars", "item", "lookupless", "prefix", "users", "y"]
    );
    assert!(n.all.contains(&"x".to_string()) && n.all.contains(&"z".to_string()));
}

#[test]
fn unknown_names_are_errors_with_position_and_hint() {
    let e = err("ok\n{{ s | uper }}");
    assert!(
        e.contains("unknown filter `uper`")
            && e.contains("did you mean `upper`")
            && e.contains("2:8"),
        "{e}"
    );
    let e = err("{% if x is defind %}{% endif %}");
    assert!(
        e.contains("unknown test `defind`") && e.contains("did you mean `defined`"),
        "{e}"
    );
    let e = err("{{ rnage(end=3) }}");
    assert!(
        e.contains("unknown function `rnage`") && e.contains("did you mean `range`"),
        "{e}"
    );
    let e = err("{% iff x %}{% endif %}");
    assert!(e.contains("unknown tag `iff`"), "{e}");
    let e = err("{{ (x }}");
    assert!(
        e.contains("template syntax error") && e.contains("1:"),
        "{e}"
    );
}

#[test]
fn undefined_flows_to_default_and_defined() {
    assert_eq!(v("missing | default('x', true)"), json!("x"));
    assert_eq!(v("empty | d('x', true)"), json!("x"));
    assert_eq!(v("s[0]"), json!("a"));
    assert_eq!(v("xs.1"), json!(2));
    assert!(cond("xs[9] is not defined"));
    assert!(cond("xs[1] is defined"));
    let e = Templar::new()
        .render_str("{{ xs[9] }}", &ctx())
        .unwrap_err();
    assert!(e.contains("has no element 9"), "{e}");
    // A no-break space is white space, as in Python.
    assert_eq!(v("n\u{a0}+ 1"), json!(6));
}

#[test]
fn native_values_as_ansible_gives_them() {
    let t = Templar::new();
    let val = |src: &str| t.render_string_value(src, &ctx()).unwrap();
    assert_eq!(val("{{ n }}\n"), json!(5));
    assert_eq!(val("{{ s }}\n"), json!("abc\n"));
    assert_eq!(
        val("{# c #}{% if t %}{{ xs }}{% endif %}"),
        json!([1, 2, 3])
    );
    assert_eq!(val("{% set l = [] %}{{ l }}"), json!([]));
    assert_eq!(val("{{ n }} {{ xs }}"), json!("5 [1, 2, 3]"));
    assert_eq!(
        val("{% for x in xs %}\n{{ x }}\n{% endfor %}\n"),
        json!("1\n2\n3\n")
    );
}

#[test]
fn guards_see_through_missing_objects() {
    assert!(cond("nothing.here[svc + '.service'] is not defined"));
    assert!(cond("units[svc + '.service'] is defined"));
    assert!(cond("d.nope[key] is undefined"));
    assert_eq!(v("nothing[0][key] | default('dflt')"), json!("dflt"));
    assert!(Templar::new()
        .eval_cond("nothing[key] == 1", &ctx())
        .is_err());
}

#[test]
fn loop_neighbours_and_depth() {
    assert_eq!(
        r("{% for x in xs %}{{ loop.previtem | default('-') }}{{ loop.nextitem | default('-') }}{{ loop.depth }};{% endfor %}"),
        "-21;131;2-1;"
    );
}

#[test]
fn calls_are_checked_against_the_library_signatures() {
    let e = err("{{ s | replace('a') }}");
    assert!(
        e.contains("filter `replace` is missing its required argument `new`") && e.contains("1:8"),
        "{e}"
    );
    let e = err("{{ s | upper(1) }}");
    assert!(
        e.contains("filter `upper` takes at most 0 positional arguments (1 given)"),
        "{e}"
    );
    let e = err("{{ names | join(sepp=',') }}");
    assert!(
        e.contains("filter `join` has no parameter `sepp`") && e.contains("did you mean `sep`"),
        "{e}"
    );
    let e = err("{% if s is version() %}{% endif %}");
    assert!(
        e.contains("test `version` is missing its required argument"),
        "{e}"
    );
    let e = err("{{ lookup('evn', 'HOME') }}");
    assert!(
        e.contains("unknown lookup plugin `evn`") && e.contains("did you mean `env`"),
        "{e}"
    );
    let e = err("{{ lookup('env', 'HOME', defualt='x') }}");
    assert!(
        e.contains("lookup plugin `env` has no parameter `defualt`"),
        "{e}"
    );
    // The lowering's own helpers are not names a template may call.
    let e = err("{{ __jx_add(a0=1, a1=2) }}");
    assert!(e.contains("unknown function `__jx_add`"), "{e}");
    // Old keyword names and lookup options stay accepted.
    assert_eq!(r("{{ names | join(sep='+') }}"), "a+b");
    assert_eq!(r("{{ s | replace(from='b', to='-') }}"), "a-c");
    assert_eq!(
        r("{{ lookup('env', 'NO_SUCH_VAR_H16D', default='dflt') }}"),
        "dflt"
    );
    assert_eq!(
        v("query('vars', 'key', wantlist=true)"),
        json!(["a"]),
        "lookups see the template's variables"
    );
}

#[test]
fn backslashes_and_none_in_text() {
    // The escaping the repo's roles do (roles/cap, roles/cast_imaging_client), in Jinja2 syntax.
    let c = Context::from_value(json!({"u": "a\\b\"c'd$e`f"})).unwrap();
    let out = Templar::new()
        .render_str(
            "{{ u | replace('\\\\', '\\\\\\\\') | replace('\"', '\\\\\"') | replace(\"'\", \"\\\\'\") | replace('$', '\\\\$') | replace('`', '\\\\`') }}",
            &c,
        )
        .unwrap();
    assert_eq!(out, "a\\\\b\\\"c\\'d\\$e\\`f");
    // Ansible's finalize: None prints as nothing in text, as `None` inside a list.
    assert_eq!(r("x{{ none }}y{{ [none] }}"), "x y[None]".replace(' ', ""));
    assert_eq!(v("2 ** 0"), json!(1));
    assert_eq!(v("2 ** -1"), json!(0.5));
}

#[test]
fn conditionals_must_be_boolean_and_results_defined() {
    let t = Templar::new();
    let e = t.eval_cond("xs | select('odd')", &ctx()).unwrap_err();
    assert!(e.contains("type 'list'"), "{e}");
    assert!(t.eval_cond("d", &ctx()).is_err());
    assert!(t.eval_cond("xs | length > 2", &ctx()).unwrap());
    assert!(!t.eval_cond("empty", &ctx()).unwrap());
    // A result that still holds an undefined value is refused (Ansible's finalize).
    let e = t
        .render_string_value("{{ users | map(attribute='nope') | list }}", &ctx())
        .unwrap_err();
    assert!(e.contains("nope"), "{e}");
}
#[test]
fn undefined_flows_through_filters_to_default() {
    assert_eq!(
        v("(d['nope']['results'] | selectattr('item', 'equalto', 'x') | first).elb.name | default('N/A')"),
        json!("N/A")
    );
    assert_eq!(
        v("(d.b | dict2items | first).key | default('N/A')"),
        json!("c")
    );
    assert!(cond("(d.nope | first) is not defined"));
    // Outside a guard it is an error still; so is joining undefined items.
    assert!(Templar::new()
        .render_str("{{ d.nope | first }}", &ctx())
        .is_err());
    assert!(Templar::new()
        .render_str("{{ ['a', 'zz'] | map('extract', d) | join(',') }}", &ctx())
        .is_err());
    // A test on a missing attribute: the whole selection is undefined (ansible-core 2.19).
    assert_eq!(
        v("users | selectattr('nope', 'equalto', 1) | default([]) | list"),
        json!([])
    );
    assert!(Templar::new()
        .render_string_value(
            "{{ users | selectattr('nope', 'equalto', 1) | list }}",
            &ctx()
        )
        .is_err());
}

#[test]
fn jinja2_header_line_sets_lstrip_blocks_in_template_files() {
    let t = Templar::new();
    let src = "#jinja2: trim_blocks:True, lstrip_blocks:True\n[x]\n  {% for n in names %}\n  k={{ n }}\n    {# note #}\n  {% endfor %}\n  {%+ if t %}on{% endif %}\n";
    assert_eq!(
        t.render_template_file(src, &ctx()).unwrap(),
        "[x]\n  k=a\n  k=b\n  on"
    );
    // Without the header: the indentation before block tags stays (Ansible's default).
    let plain = "[x]\n  {% for n in names %}\n  k={{ n }}\n  {% endfor %}\n";
    assert_eq!(
        t.render_template_file(plain, &ctx()).unwrap(),
        "[x]\n    k=a\n    k=b\n  "
    );
}

#[test]
fn test_keywords_go_to_their_python_place() {
    assert!(cond("'1.2' is version('1.10', operator='lt')"));
    assert!(cond("'1.2' is version(operator='ge', version='1.1')"));
    assert!(cond("'1.2.3' is version('1.2.3', version_type='loose')"));
    assert!(!cond("'1.2' is version('1.10', operator='gt')"));
}
