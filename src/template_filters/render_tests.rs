//! The library through tera, as the Jinja2 lowering calls it (`a0=` positional names). Every
//! expected value is what ansible-core 2.19.14 (Jinja2 3.1) renders for the Jinja2 expression in
//! the comment (printed with Python `str()`, which `__jx_str` reproduces).
use serde_json::{json, Value};
use tera::{Context, Tera};

fn render(src: &str, vars: Value) -> Result<String, String> {
    let mut t = Tera::default();
    super::register(&mut t);
    let ctx = Context::from_value(vars).map_err(|e| e.to_string())?;
    t.render_str(src, &ctx)
        .map_err(|e| crate::template::error_chain(&e))
}

fn data() -> Value {
    json!({
        "mixed": ["b", "A", "a", "C"],
        "nested": [[1, [2]], 3, [4, [5, [6]]]],
        "objs": [{"a": 1}, {"a": 2, "b": 3}],
        "d": {"b": 1, "a": 2},
        "r": {"failed": false, "changed": true, "skipped": false},
        "r2": {"results": [{"changed": true}]},
        "people": [{"n": "x", "g": 1}, {"n": "y", "g": 1}, {"n": "z", "g": 2}],
        "users": [{"name": "u", "groups": ["a", "b"]}],
        "base": {"a": [1], "b": {"c": 1}},
        "over": {"a": [2], "b": {"d": 2}},
        "items": [{"key": "a", "value": 1}],
        "nothing": null,
        "url": "http://u:p@h.com:8080/p/a?q=1#f",
        "empty": "",
        "json_text": "{\"a\": 1}",
    })
}

fn check(cases: &[(&str, &str)]) {
    let mut bad = Vec::new();
    for (src, want) in cases {
        match render(src, data()) {
            Ok(got) if got == *want => {}
            other => bad.push(format!("{src}\n   want {want:?}\n   got  {other:?}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
}

#[test]
fn list_filters_like_ansible() {
    check(&[
        // ['a','A','b'] | unique
        (r#"{{ ["a","A","b"] | unique | __jx_str }}"#, "['a', 'b']"),
        // mixed | sort ; sort(case_sensitive=true) ; max
        ("{{ mixed | sort | __jx_str }}", "['A', 'a', 'b', 'C']"),
        ("{{ mixed | sort(case_sensitive=true) | __jx_str }}", "['A', 'C', 'a', 'b']"),
        ("{{ mixed | max }}", "C"),
        ("{{ nested | flatten | __jx_str }}", "[1, 2, 3, 4, 5, 6]"),
        ("{{ nested | flatten(a0=1) | __jx_str }}", "[1, [2], 3, 4, [5, [6]]]"),
        ("{{ [1,2,3] | difference(a0=[2]) | __jx_str }}", "[1, 3]"),
        ("{{ [1,2,2,3] | union(a0=[4,1]) | __jx_str }}", "[1, 2, 3, 4]"),
        ("{{ [3,1,2,3] | intersect(a0=[3,2]) | __jx_str }}", "[2, 3]"),
        ("{{ [1,2] | symmetric_difference(a0=[2,3]) | __jx_str }}", "[1, 3]"),
        (r#"{{ [1,2] | zip(a0=["a","b","c"]) | __jx_str }}"#, "[[1, 'a'], [2, 'b']]"),
        (r#"{{ [1,2] | zip_longest(a0=["a","b","c"], fillvalue="-") | __jx_str }}"#, "[[1, 'a'], [2, 'b'], ['-', 'c']]"),
        (r#"{{ [1,2] | product(a0=["a","b"]) | __jx_str }}"#, "[[1, 'a'], [1, 'b'], [2, 'a'], [2, 'b']]"),
        ("{{ [1,2,3] | permutations(a0=2) | __jx_str }}", "[[1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]]"),
        ("{{ [1,2,3] | combinations(a0=2) | __jx_str }}", "[[1, 2], [1, 3], [2, 3]]"),
        (r#"{{ [1,2,3,4,5] | batch(a0=2, a1="x") | __jx_str }}"#, "[[1, 2], [3, 4], [5, 'x']]"),
        ("{{ [1,2,3,4,5] | slice(a0=2) | __jx_str }}", "[[1, 2, 3], [4, 5]]"),
        (r#"{{ objs | map(attribute="a") | __jx_str }}"#, "[1, 2]"),
        (r#"{{ ["a","b"] | map(a0="upper") | __jx_str }}"#, "['A', 'B']"),
        (r#"{{ [1,2,3,4] | select(a0="odd") | __jx_str }}"#, "[1, 3]"),
        (r#"{{ [1,2,3,4] | reject(a0="gt", a1=2) | __jx_str }}"#, "[1, 2]"),
        (r#"{{ objs | selectattr(a0="a", a1="equalto", a2=2) | __jx_str }}"#, "[{'a': 2, 'b': 3}]"),
        (r#"{{ objs | selectattr(a0="b", a1="defined") | __jx_str }}"#, "[{'a': 2, 'b': 3}]"),
        (r#"{{ objs | sum(attribute="a") }}"#, "3"),
        ("{{ [1.5,2] | sum }}", "3.5"),
        ("{{ d | dictsort | __jx_str }}", "[['a', 2], ['b', 1]]"),
        ("{{ d | items | __jx_str }}", "[['b', 1], ['a', 2]]"),
        (r#"{{ people | groupby(a0="g") | __jx_str }}"#, "[[1, [{'n': 'x', 'g': 1}, {'n': 'y', 'g': 1}]], [2, [{'n': 'z', 'g': 2}]]]"),
        (r#"{{ "abc" | list | __jx_str }}"#, "['a', 'b', 'c']"),
        (r#"{{ "abc" | first }}"#, "a"),
        (r#"{{ [1,2] | join(a0=",") }}"#, "1,2"),
        (r#"{{ [1,2] | join(sep=", ") }}"#, "1, 2"),
        (r#"{{ objs | join(a0="-", attribute="a") }}"#, "1-2"),
        (r#"{{ "abc" | reverse }}"#, "cba"),
        (r#"{{ users | subelements(a0="groups") | __jx_str }}"#, "[[{'name': 'u', 'groups': ['a', 'b']}, 'a'], [{'name': 'u', 'groups': ['a', 'b']}, 'b']]"),
        ("{{ [1, 'a'] | type_debug }}", "list"),
        // {{ 59 | random(seed='host1') }} and friends
        (r#"{{ 59 | random(seed="host1") }}"#, "31"),
        (r#"{{ 60 | random(seed="db-01.example.com") }}"#, "50"),
        (r#"{{ 100 | random(start=1, step=10, seed="x") }}"#, "51"),
        (r#"{{ ["a","b","c","d"] | random(seed="web") }}"#, "b"),
        (r#"{{ [1,2,3,4,5] | shuffle(seed="abc") | __jx_str }}"#, "[1, 2, 3, 4, 5]"),
        ("{{ 1000 | random(seed=42) }}", "654"),
        (r#"{{ [1,2,3,4,5,6,7] | shuffle(seed="web1") | __jx_str }}"#, "[4, 2, 1, 5, 6, 3, 7]"),
        (r#"{{ 59 | random(seed="") }}"#, "29"),
    ]);
}

#[test]
fn dict_and_value_filters_like_ansible() {
    check(&[
        ("{{ base | combine(a0=over) | __jx_str }}", "{'a': [2], 'b': {'d': 2}}"),
        (r#"{{ base | combine(a0=over, recursive=true, list_merge="append") | __jx_str }}"#, "{'a': [1, 2], 'b': {'c': 1, 'd': 2}}"),
        ("{{ base | combine(with=over) | __jx_str }}", "{'a': [2], 'b': {'d': 2}}"),
        ("{{ d | dict2items | __jx_str }}", "[{'key': 'b', 'value': 1}, {'key': 'a', 'value': 2}]"),
        ("{{ items | items2dict | __jx_str }}", "{'a': 1}"),
        (r#"{{ "b" | extract(a0=d) }}"#, "1"),
        (r#"{{ "x" | ternary(a0="y", a1="n") }}"#, "y"),
        (r#"{{ nothing | ternary(a0="y", a1="n", a2="z") }}"#, "z"),
        ("{{ 42 | string }}", "42"),
        (r#"{{ "0x1F" | int(base=16) }}"#, "31"),
        (r#"{{ "zz" | int(a0=7) }}"#, "7"),
        (r#"{{ "3.5" | float }}"#, "3.5"),
        ("{{ 3.7 | int }}", "3"),
        ("{{ 2.5 | round | __jx_str }}", "2.0"),
        ("{{ 3.14159 | round(a0=2) }}", "3.14"),
        (r#"{{ 3.1 | round(a0=0, a1="ceil") | __jx_str }}"#, "4.0"),
        ("{{ -3 | abs }}", "3"),
        (r#"{{ "yes" | bool | __jx_str }}"#, "True"),
        (r#"{{ "foo" | bool | __jx_str }}"#, "False"),
        ("{{ 2 | bool | __jx_str }}", "False"),
        ("{{ 1024 | human_readable }}", "1.00 KB"),
        ("{{ 2 | pow(a0=10) | __jx_str }}", "1024.0"),
        ("{{ 8 | root(a0=3) | __jx_str }}", "2.0"),
        ("{{ 100 | log(a0=10) | __jx_str }}", "2.0"),
        (r#"{{ url | urlsplit(a0="hostname") }}"#, "h.com"),
        ("{{ url | urlsplit | __jx_str }}", "{'fragment': 'f', 'hostname': 'h.com', 'netloc': 'u:p@h.com:8080', 'password': 'p', 'path': '/p/a', 'port': 8080, 'query': 'q=1', 'scheme': 'http', 'username': 'u'}"),
    ]);
}

#[test]
fn string_filters_like_ansible() {
    check(&[
        (r#"{{ "a b" | quote }}"#, "'a b'"),
        (r#"{{ "ab" | quote }}"#, "ab"),
        (
            r#"{{ "hello world foo bar" | truncate(a0=9) }}"#,
            "hello...",
        ),
        (
            r#"{{ "hello world foo bar" | truncate(a0=12, a1=true) }}"#,
            "hello wor...",
        ),
        (
            r#"{{ "hello world foo bar" | wordwrap(a0=7) }}"#,
            "hello\nworld\nfoo bar",
        ),
        (r#"{{ "ab" | center(a0=7) }}|"#, "   ab  |"),
        (r#"{{ "abc" | center(a0=6) }}|"#, " abc  |"),
        (
            r#"{{ "hello-world foo(bar" | title }}"#,
            "Hello-World Foo(Bar",
        ),
        (r#"{{ "hELLO wORLD" | capitalize }}"#, "Hello world"),
        (r#"{{ "<p>a  <b>b</b></p>" | striptags }}"#, "a b"),
        (r#"{{ "x" | comment }}"#, "#\n# x\n#"),
        (
            r#"{{ "x" | comment(a0="cblock") }}"#,
            "/*\n *\n * x\n *\n */",
        ),
        (
            r#"{{ "x" | comment(a0="xml") }}"#,
            "<!--\n -\n - x\n -\n-->",
        ),
        (r#"{{ "%s-%03d" | format(a0="a", a1=7) }}"#, "a-007"),
        (r#"{{ "a b c" | wordcount }}"#, "3"),
        (r#"{{ "a&<" | e }}"#, "a&amp;&lt;"),
        (r#"{{ "a.b*c" | regex_escape }}"#, r"a\.b\*c"),
        (
            r#"{{ "foo bar" | regex_replace(a0="(o+)", a1="<\1>") }}"#,
            "f<oo> bar",
        ),
        (
            r#"{{ "foo bar" | regex_replace(regex="o", replace="0") }}"#,
            "f00 bar",
        ),
        (
            r#"{{ "FOO" | regex_replace(a0="o", a1="x", ignorecase=true) }}"#,
            "Fxx",
        ),
        (
            r#"{{ "abc" | regex_search(a0="b(c)", a1="\1") | __jx_str }}"#,
            "['c']",
        ),
        // None prints as nothing in text (Ansible's finalize), `None` inside a list.
        (r#"{{ "abc" | regex_search(a0="z") | __jx_str }}"#, ""),
        (r#"{{ ["abc" | regex_search(a0="z")] | __jx_str }}"#, "[None]"),
        (
            r#"{{ "a1b22" | regex_findall(a0="\d+") | __jx_str }}"#,
            "['1', '22']",
        ),
        (
            r#"{{ "a1b22" | regex_findall(a0="([a-z])(\d+)") | __jx_str }}"#,
            "[['a', '1'], ['b', '22']]",
        ),
        (r#"{{ "a,b" | split(a0=",") | __jx_str }}"#, "['a', 'b']"),
        (r#"{{ "a/b" | replace(from="/", to="%2F") }}"#, "a%2Fb"),
        (r#"{{ "a/b" | replace(a0="/", a1="-") }}"#, "a-b"),
        (r#"{{ "x" | indent(a0=2, a1=true) }}"#, "  x"),
        (r#"{{ "a verylongwordhere b" | wordwrap(a0=6) }}"#, "a very\nlongwo\nrdhere\nb"),
        (r#"{{ "hello world foo bar baz" | truncate(a0=15) }}"#, "hello world..."),
        (r#"{{ "A-b_c d" | title }}"#, "A-B_c D"),
        (r#"{{ ["x", 1, 2.0, nothing] | join(a0=", ") }}"#, "x, 1, 2.0, None"),
        ("{{ 1048576 | human_readable }}", "1.00 MB"),
        (r#"{{ 1048576 | human_readable(unit="K") }}"#, "1024.00 KB"),
        ("{{ 1000 | human_readable(isbits=true) }}", "1000.00 bits"),
        (r#"{{ d | dictsort(a0=false, a1="value", a2=true) | __jx_str }}"#, "[['a', 2], ['b', 1]]"),
        ("{{ [1,2] | sum(start=10) }}", "13"),
        ("{{ -2.5 | round | __jx_str }}|{{ 1.55 | round(a0=1) }}|{{ 12345.6789 | round(a0=-2) | __jx_str }}", "-2.0|1.6|12300.0"),
    ]);
}

#[test]
fn encodings_and_paths_like_ansible() {
    check(&[
        (r#"{{ "abc" | b64encode }}"#, "YWJj"),
        (r#"{{ "YWJj" | b64decode }}"#, "abc"),
        (
            r#"{{ "abc" | hash(a0="sha256") }}"#,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        // RFC 1321's test vector.
        (
            r#"{{ "abc" | hash(a0="md5") }}"#,
            "900150983cd24fb0d6963f7d28e17f72",
        ),
        (r#"{{ "abc" | md5 }}"#, "900150983cd24fb0d6963f7d28e17f72"),
        (
            r#"{{ "abc" | checksum }}"#,
            "a9993e364706816aba3e25717850c26c9cd0d89d",
        ),
        (
            r#"{{ "abc" | to_uuid }}"#,
            "27dc713b-d72c-5825-88f3-9f240e739319",
        ),
        ("{{ d | to_json }}", r#"{"b": 1, "a": 2}"#),
        (
            "{{ d | to_nice_json }}",
            "{\n    \"a\": 2,\n    \"b\": 1\n}",
        ),
        (
            "{{ d | to_nice_json(a0=2) }}",
            "{\n  \"a\": 2,\n  \"b\": 1\n}",
        ),
        ("{{ d | to_nice_yaml }}", "a: 2\nb: 1\n"),
        ("{{ base | to_yaml }}", "a: [1]\nb: {c: 1}\n"),
        (
            r#"{{ "a: [1, 2]" | from_yaml | __jx_str }}"#,
            "{'a': [1, 2]}",
        ),
        ("{{ json_text | from_json | __jx_str }}", "{'a': 1}"),
        (r#"{{ "a b&c/d" | urlencode }}"#, "a%20b%26c/d"),
        (
            r#"{{ "/etc/x.conf" | splitext | __jx_str }}"#,
            "['/etc/x', '.conf']",
        ),
        (r#"{{ "/a/b/c" | relpath(a0="/a/x") }}"#, "../b/c"),
        (r#"{{ ["/a", "b", "/c/d"] | path_join }}"#, "/c/d"),
        (
            r#"{{ "/a/b/" | basename }}|{{ "/a/b/" | dirname }}"#,
            "|/a/b",
        ),
    ]);
}

#[test]
fn tests_like_ansible() {
    check(&[
        ("{% if r is failed %}y{% else %}n{% endif %}", "n"),
        ("{% if r is succeeded %}y{% else %}n{% endif %}", "y"),
        ("{% if r is changed %}y{% else %}n{% endif %}", "y"),
        ("{% if r is skipped %}y{% else %}n{% endif %}", "n"),
        ("{% if r is finished %}y{% else %}n{% endif %}", "y"),
        ("{% if r2 is changed %}y{% else %}n{% endif %}", "y"),
        ("{% if nope is defined %}y{% else %}n{% endif %}", "n"),
        ("{% if nothing is defined %}y{% else %}n{% endif %}", "y"),
        ("{% if nope is undefined %}y{% else %}n{% endif %}", "y"),
        ("{% if mixed is sequence %}y{% else %}n{% endif %}", "y"),
        ("{% if d is mapping %}y{% else %}n{% endif %}", "y"),
        (
            r#"{% if url is match("http") %}y{% else %}n{% endif %}"#,
            "y",
        ),
        (
            r#"{% if url is match("h\.com") %}y{% else %}n{% endif %}"#,
            "n",
        ),
        (
            r#"{% if url is search("h\.com") %}y{% else %}n{% endif %}"#,
            "y",
        ),
        (
            r#"{% if url is regex("F$", true) %}y{% else %}n{% endif %}"#,
            "y",
        ),
        (
            "{% if mixed is contains(\"A\") %}y{% else %}n{% endif %}",
            "y",
        ),
        ("{% if empty is falsy %}y{% else %}n{% endif %}", "y"),
        ("{% if empty is string %}y{% else %}n{% endif %}", "y"),
    ]);
}

#[test]
fn version_test_through_tera() {
    let v = json!({"v": "1.2.10", "pg": "9.6"});
    let r = |s: &str| render(s, v.clone());
    assert_eq!(
        r(r#"{% if v is version("1.2.9", ">") %}y{% endif %}"#).unwrap(),
        "y"
    );
    assert_eq!(
        r(r#"{% if pg is version_compare("10", "<") %}y{% endif %}"#).unwrap(),
        "y"
    );
    assert_eq!(
        r(r#"{% if v is version("1.2.9", "lt") %}y{% else %}n{% endif %}"#).unwrap(),
        "n"
    );
    let e = render(r#"{% if empty is version("1", ">") %}y{% endif %}"#, data()).unwrap_err();
    assert!(e.contains("Input version value cannot be empty"), "{e}");
    let e = r(r#"{% if v is version("1", "~") %}y{% endif %}"#).unwrap_err();
    assert!(e.contains("Invalid operator type (~)"), "{e}");
}

#[test]
fn helpers_like_python() {
    check(&[
        (r#"{{ __jx_add(a0="a", a1="b") }}"#, "ab"),
        ("{{ __jx_add(a0=[1], a1=[2]) | __jx_str }}", "[1, 2]"),
        ("{{ __jx_add(a0=1, a1=2.5) }}", "3.5"),
        (
            "{{ __jx_floordiv(a0=7, a1=2) }}|{{ __jx_floordiv(a0=-7, a1=2) }}",
            "3|-4",
        ),
        ("{{ __jx_mod(a0=-7, a1=3) }}", "2"),
        (r#"{{ __jx_mod(a0="%s-%d", a1=["x", 3]) }}"#, "x-3"),
        (
            r#"{{ __jx_cmp(a0="a", a1="b", op="<") | __jx_str }}"#,
            "True",
        ),
        (
            "{{ __jx_cmp(a0=[1, 2], a1=[1, 3], op=\">=\") | __jx_str }}",
            "False",
        ),
        ("{{ __jx_getitem(obj=mixed, key=-1) }}", "C"),
        (
            "{{ __jx_slice(obj=mixed, start=1) | __jx_str }}",
            "['A', 'a', 'C']",
        ),
        (r#"{{ __jx_slice(obj="abcdef", step=-2) }}"#, "fdb"),
        (
            "{{ __jx_concat(a0=mixed, a1=nothing) }}",
            "['b', 'A', 'a', 'C']None",
        ),
        (
            r#"{{ __jx_dict(k0="a", v0=1, k1="b", v1=[true]) | __jx_str }}"#,
            "{'a': 1, 'b': [True]}",
        ),
        (
            r#"{{ __jx_method(obj=d, name="get", a0="zz") | __jx_str }}"#,
            "",
        ),
        (
            r#"{{ __jx_method(obj=d, name="get", a0="zz", a1=5) }}"#,
            "5",
        ),
        (
            r#"{{ __jx_method(obj=", ", name="join", a0=mixed) }}"#,
            "b, A, a, C",
        ),
        (
            r#"{{ __jx_method(obj="{}-{}", name="format", a0="a", a1=1) }}"#,
            "a-1",
        ),
        (
            r#"{{ __jx_default(a0=__jx_getitem(obj=d, key="zz"), a1="dflt") }}"#,
            "dflt",
        ),
        (
            r#"{{ __jx_default(a0=empty, a1="dflt", a2=true) }}"#,
            "dflt",
        ),
        (
            r#"{{ __jx_getitem(obj=d, key="zz") | __jx_default(a0="x") }}"#,
            "x",
        ),
        (
            "{{ range(a0=3) | __jx_str }}|{{ range(a0=1, a1=7, a2=3) | __jx_str }}",
            "[0, 1, 2]|[1, 4]",
        ),
        ("{{ range(end=3) | __jx_str }}", "[0, 1, 2]"),
        (
            r#"{{ __jx_test(obj=__jx_getitem(obj=d, key="zz"), name="defined") | __jx_str }}"#,
            "False",
        ),
        (
            r#"{{ __jx_test(obj=__jx_add(a0=1, a1=2), name="ansible.builtin.gt", a0=2) | __jx_str }}"#,
            "True",
        ),
        (
            r#"{{ __jx_test(obj="1.2.10", name="version", a0="1.2.9", a1=">") | __jx_str }}"#,
            "True",
        ),
    ]);
}

#[test]
fn undefined_is_refused_where_jinja_refuses_it() {
    let e = render(r#"{{ __jx_getitem(obj=d, key="zz") | upper }}"#, data()).unwrap_err();
    assert!(e.contains("'dict object' has no attribute 'zz'"), "{e}");
    let e = render(r#"{{ __jx_getitem(obj=d, key="zz") | __jx_str }}"#, data()).unwrap_err();
    assert!(e.contains("has no attribute 'zz'"), "{e}");
    let e = render(r#"{{ __jx_getitem(obj=d, key="zz") | mandatory }}"#, data()).unwrap_err();
    assert!(e.contains("Mandatory variable"), "{e}");
    let e = render(r#"{{ [] | first | upper }}"#, data()).unwrap_err();
    assert!(e.contains("No first item, sequence was empty."), "{e}");
    assert_eq!(
        render(r#"{{ [] | max | __jx_default(a0="none") }}"#, data()).unwrap(),
        "none"
    );
    let e = render(r#"{{ [1] | join(a0=",", bogus=1) }}"#, data()).unwrap_err();
    assert!(e.contains("unexpected keyword argument 'bogus'"), "{e}");
}

#[test]
fn lookups_read_files_env_and_vars() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path();
    std::fs::create_dir_all(pb.join("files")).unwrap();
    std::fs::write(pb.join("files/f.txt"), "hello  \n").unwrap();
    let vars = json!({"playbook_dir": pb.to_string_lossy(), "x": 1, "y": "z"});
    let r = |s: &str| render(s, vars.clone());
    // lookup('file', 'f.txt') -> 'hello' (rstrip)
    assert_eq!(
        r(r#"{{ lookup(a0="file", a1="f.txt", __ctx=__tera_context) }}|"#).unwrap(),
        "hello|"
    );
    assert_eq!(
        r(r#"{{ lookup(a0="vars", a1="x", __ctx=__tera_context) }}"#).unwrap(),
        "1"
    );
    assert_eq!(
        r(r#"{{ lookup(a0="vars", a1="x", a2="y", __ctx=__tera_context) | __jx_str }}"#).unwrap(),
        "[1, 'z']"
    );
    assert_eq!(
        r(r#"{{ lookup(a0="vars", a1="nope", default=5, __ctx=__tera_context) }}"#).unwrap(),
        "5"
    );
    assert!(
        r(r#"{{ lookup(a0="vars", a1="nope", __ctx=__tera_context) }}"#)
            .unwrap_err()
            .contains("No variable named 'nope'")
    );
    assert_eq!(
        r(r#"{{ lookup(a0="env", a1="CASTELLAN_NO_SUCH_VAR_H16B", default="d") }}"#).unwrap(),
        "d"
    );
    assert_eq!(
        r(r#"{{ query(a0="items", a1=[1, 2], a2=[3]) | __jx_str }}"#).unwrap(),
        "[1, 2, 3]"
    );
    assert_eq!(
        r(r#"{{ lookup(a0="first_found", a1=["nope.txt", "f.txt"], __ctx=__tera_context) }}"#)
            .unwrap(),
        pb.join("files/f.txt").to_string_lossy()
    );
    assert_eq!(r(r#"{{ lookup(a0="first_found", a1=["nope.txt"], skip=true, __ctx=__tera_context) | __jx_str }}"#).unwrap(), "[]");
    // password: generated once, stored 0600, read back the same
    let p1 = r(r#"{{ lookup(a0="password", a1="creds/pw chars=digits length=12", __ctx=__tera_context) }}"#).unwrap();
    assert_eq!(p1.len(), 12);
    assert!(p1.chars().all(|c| c.is_ascii_digit()), "{p1}");
    let p2 = r(r#"{{ lookup(a0="password", a1="creds/pw chars=digits length=12", __ctx=__tera_context) }}"#).unwrap();
    assert_eq!(p1, p2);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(pb.join("creds/pw"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(render(r#"{{ "1 MiB" | human_to_bytes }}"#, data())
        .unwrap_err()
        .contains("failed to convert 1 MiB"));
    assert!(r(r#"{{ lookup(a0="nosuch", a1="x") }}"#)
        .unwrap_err()
        .contains("lookup plugin 'nosuch' not found"));
}
