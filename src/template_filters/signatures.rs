//! The Python signature of every filter, test, function and lookup the library provides: the
//! parameter names in order, how many are required, whether extra positional (`*args`) or
//! keyword (`**kwargs`) arguments are accepted, and the keyword names castellan's tera syntax
//! used before (aliases). The front-end validates calls against it (exit 4 before any host);
//! `args.rs` binds the arguments of each call with it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Filter,
    Test,
    Function,
    Lookup,
}

#[derive(Debug)]
pub struct Sig {
    pub name: &'static str,
    /// Parameter names after the operand (filters, tests) in Python order.
    pub params: &'static [&'static str],
    pub required: usize,
    /// `*args`: extra positional arguments.
    pub varargs: bool,
    /// `**kwargs`: any keyword.
    pub kwargs: bool,
    /// Old keyword names (castellan's tera syntax) -> the parameter they stand for.
    pub aliases: &'static [(&'static str, &'static str)],
    /// The parameters are keyword-only (they follow `*args` in Python: `product(*it, repeat=1)`).
    pub kwonly: bool,
}

const fn s(name: &'static str, params: &'static [&'static str], required: usize) -> Sig {
    Sig {
        name,
        params,
        required,
        varargs: false,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    }
}
const fn v(name: &'static str, params: &'static [&'static str], required: usize) -> Sig {
    Sig {
        name,
        params,
        required,
        varargs: true,
        kwargs: true,
        aliases: &[],
        kwonly: false,
    }
}
const fn k(name: &'static str, params: &'static [&'static str], required: usize) -> Sig {
    Sig {
        name,
        params,
        required,
        varargs: false,
        kwargs: true,
        aliases: &[],
        kwonly: false,
    }
}
const fn a(
    name: &'static str,
    params: &'static [&'static str],
    required: usize,
    aliases: &'static [(&'static str, &'static str)],
) -> Sig {
    Sig {
        name,
        params,
        required,
        varargs: false,
        kwargs: false,
        aliases,
        kwonly: false,
    }
}

/// Filters (Jinja2 3.1 builtins, ansible-core 2.19 core/mathstuff/urlsplit, and tera's own
/// that castellan's roles used before).
pub static FILTERS: &[Sig] = &[
    s("abs", &[], 0),
    s("attr", &["name"], 1),
    s("b64decode", &["encoding", "urlsafe"], 0),
    s("b64encode", &["encoding", "urlsafe"], 0),
    s("basename", &[], 0),
    s("batch", &["linecount", "fill_with"], 1),
    s("bool", &[], 0),
    s("capitalize", &[], 0),
    s("center", &["width"], 0),
    s("checksum", &[], 0),
    s("combinations", &["r"], 1),
    Sig {
        name: "combine",
        params: &[],
        required: 0,
        varargs: true,
        kwargs: true,
        aliases: &[],
        kwonly: false,
    },
    k("comment", &["style"], 0),
    s("count", &[], 0),
    a(
        "default",
        &["default_value", "boolean"],
        0,
        &[("value", "default_value")],
    ),
    s("dict2items", &["key_name", "value_name"], 0),
    s("dictsort", &["case_sensitive", "by", "reverse"], 0),
    s("difference", &["b"], 1),
    s("dirname", &[], 0),
    s("e", &[], 0),
    s("escape", &[], 0),
    s("expanduser", &[], 0),
    s("expandvars", &[], 0),
    s("extract", &["container", "morekeys"], 1),
    s("first", &[], 0),
    s("flatten", &["levels", "skip_nulls"], 0),
    s("float", &["default"], 0),
    s("forceescape", &[], 0),
    v("format", &[], 0),
    k("from_json", &[], 0),
    s("from_yaml", &[], 0),
    s("from_yaml_all", &[], 0),
    s("groupby", &["attribute", "default", "case_sensitive"], 1),
    s("hash", &["hashtype"], 0),
    s("human_readable", &["isbits", "unit"], 0),
    s("human_to_bytes", &["default_unit", "isbits"], 0),
    a(
        "indent",
        &["width", "first", "blank"],
        0,
        &[("prefix", "width")],
    ),
    s("int", &["default", "base"], 0),
    s("intersect", &["b"], 1),
    s("items", &[], 0),
    s("items2dict", &["key_name", "value_name"], 0),
    a("join", &["d", "attribute"], 0, &[("sep", "d")]),
    s("last", &[], 0),
    s("length", &[], 0),
    s("list", &[], 0),
    s("log", &["base"], 0),
    s("lower", &[], 0),
    s("mandatory", &["msg"], 0),
    v("map", &[], 0),
    s("max", &["case_sensitive", "attribute"], 0),
    s("md5", &[], 0),
    s("min", &["case_sensitive", "attribute"], 0),
    s("normpath", &[], 0),
    s("path_join", &[], 0),
    s("permutations", &["r"], 0),
    s("pow", &["y"], 1),
    s("pprint", &[], 0),
    Sig {
        name: "product",
        params: &["repeat"],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: true,
    },
    s("quote", &[], 0),
    s("random", &["start", "step", "seed"], 0),
    s("realpath", &[], 0),
    s("regex_escape", &["re_type"], 0),
    s("regex_findall", &["regex", "multiline", "ignorecase"], 1),
    a(
        "regex_replace",
        &[
            "pattern",
            "replacement",
            "ignorecase",
            "multiline",
            "count",
            "mandatory_count",
        ],
        0,
        &[("regex", "pattern"), ("replace", "replacement")],
    ),
    Sig {
        name: "regex_search",
        params: &["regex"],
        required: 1,
        varargs: true,
        kwargs: true,
        aliases: &[],
        kwonly: false,
    },
    v("reject", &[], 0),
    v("rejectattr", &[], 0),
    s("relpath", &["start"], 0),
    a(
        "replace",
        &["old", "new", "count"],
        2,
        &[("from", "old"), ("to", "new")],
    ),
    s("reverse", &[], 0),
    s("root", &["base"], 0),
    s("round", &["precision", "method"], 0),
    s("safe", &[], 0),
    v("select", &[], 0),
    v("selectattr", &[], 0),
    s("sha1", &[], 0),
    s("shuffle", &["seed"], 0),
    s("slice", &["slices", "fill_with"], 1),
    a("sort", &["reverse", "case_sensitive", "attribute"], 0, &[]),
    a("split", &["sep", "maxsplit"], 0, &[("pat", "sep")]),
    s("splitext", &[], 0),
    s("string", &[], 0),
    s("striptags", &[], 0),
    s("subelements", &["subelements", "skip_missing"], 1),
    s("sum", &["attribute", "start"], 0),
    s("symmetric_difference", &["b"], 1),
    s("ternary", &["true_val", "false_val", "none_val"], 2),
    s("title", &[], 0),
    k("to_json", &[], 0),
    k("to_nice_json", &["indent", "sort_keys"], 0),
    k("to_nice_yaml", &["indent", "default_flow_style"], 0),
    s("to_octal", &[], 0),
    s("to_uuid", &["namespace"], 0),
    k("to_yaml", &["default_flow_style"], 0),
    s("tojson", &["indent"], 0),
    s("trim", &["chars"], 0),
    s("truncate", &["length", "killwords", "end", "leeway"], 0),
    s("type_debug", &[], 0),
    s("union", &["b"], 1),
    s("unique", &["case_sensitive", "attribute"], 0),
    s("upper", &[], 0),
    s("urldecode", &[], 0),
    s("urlencode", &[], 0),
    s("urlsplit", &["query"], 0),
    s("wordcount", &[], 0),
    s(
        "wordwrap",
        &[
            "width",
            "break_long_words",
            "wrapstring",
            "break_on_hyphens",
        ],
        0,
    ),
    s("xmlattr", &["autospace"], 0),
    Sig {
        name: "zip",
        params: &[],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "zip_longest",
        params: &["fillvalue"],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: true,
    },
    // Helpers of the lowering (jinja-contract item 6, 2, 7).
    s("__jx_default", &["a0", "a1", "a2"], 0),
    s("__jx_str", &[], 0),
    // tera's own, kept for castellan's existing roles.
    a("concat", &["with"], 1, &[]),
    s("as_str", &[], 0),
    s("json_encode", &["pretty"], 0),
    s("get", &["key", "default"], 1),
    s("nth", &["n"], 1),
    s("filter", &["attribute", "value"], 1),
    s("group_by", &["attribute"], 1),
];

/// Tests (`x is t(args)`), Jinja2 builtins and ansible-core's.
pub static TESTS: &[Sig] = &[
    s("!=", &["b"], 1),
    s("<", &["b"], 1),
    s("<=", &["b"], 1),
    s("==", &["b"], 1),
    s(">", &["b"], 1),
    s(">=", &["b"], 1),
    s("abs", &[], 0),
    s("all", &[], 0),
    s("any", &[], 0),
    s("boolean", &[], 0),
    s("callable", &[], 0),
    s("change", &[], 0),
    s("changed", &[], 0),
    s("contains", &["value"], 1),
    s("defined", &[], 0),
    s("directory", &[], 0),
    s("divisibleby", &["num"], 1),
    s("eq", &["b"], 1),
    s("equalto", &["b"], 1),
    s("escaped", &[], 0),
    s("even", &[], 0),
    s("exists", &[], 0),
    s("failed", &[], 0),
    s("failure", &[], 0),
    s("false", &[], 0),
    s("falsy", &["convert_bool"], 0),
    s("file", &[], 0),
    s("finished", &[], 0),
    s("float", &[], 0),
    s("ge", &["b"], 1),
    s("greaterthan", &["b"], 1),
    s("gt", &["b"], 1),
    s("in", &["seq"], 1),
    s("integer", &[], 0),
    s("is_abs", &[], 0),
    s("is_dir", &[], 0),
    s("is_file", &[], 0),
    s("is_link", &[], 0),
    s("issubset", &["b"], 1),
    s("issuperset", &["b"], 1),
    s("iterable", &[], 0),
    s("le", &["b"], 1),
    s("lessthan", &["b"], 1),
    s("link", &[], 0),
    s("lower", &[], 0),
    s("lt", &["b"], 1),
    s("mapping", &[], 0),
    s("match", &["pattern", "ignorecase", "multiline"], 0),
    s("nan", &[], 0),
    s("ne", &["b"], 1),
    s("none", &[], 0),
    s("number", &[], 0),
    s("odd", &[], 0),
    s("reachable", &[], 0),
    s(
        "regex",
        &["pattern", "ignorecase", "multiline", "match_type"],
        0,
    ),
    s("sameas", &["other"], 1),
    s("search", &["pattern", "ignorecase", "multiline"], 0),
    s("sequence", &[], 0),
    s("skip", &[], 0),
    s("skipped", &[], 0),
    s("started", &[], 0),
    s("string", &[], 0),
    s("subset", &["b"], 1),
    s("succeeded", &[], 0),
    s("success", &[], 0),
    s("successful", &[], 0),
    s("superset", &["b"], 1),
    s("true", &[], 0),
    s("truthy", &["convert_bool"], 0),
    s("undefined", &[], 0),
    s("unreachable", &[], 0),
    s("upper", &[], 0),
    s(
        "version",
        &["version", "operator", "strict", "version_type"],
        1,
    ),
    s(
        "version_compare",
        &["version", "operator", "strict", "version_type"],
        1,
    ),
    // tera's own, kept.
    s("object", &[], 0),
    s("starting_with", &["pat"], 1),
    s("ending_with", &["pat"], 1),
    s("containing", &["pat"], 1),
    s("matching", &["pat"], 1),
];

/// Global functions (`f(...)`), including the lowering's helpers.
pub static FUNCTIONS: &[Sig] = &[
    v("lookup", &["name"], 1),
    v("query", &["name"], 1),
    v("q", &["name"], 1),
    Sig {
        name: "range",
        params: &["a0", "a1", "a2"],
        required: 0,
        varargs: false,
        kwargs: true,
        aliases: &[],
        kwonly: false,
    },
    k("dict", &[], 0),
    s("__jx_add", &["a0", "a1"], 2),
    s("__jx_floordiv", &["a0", "a1"], 2),
    s("__jx_mod", &["a0", "a1"], 2),
    s("__jx_cmp", &["a0", "a1", "op"], 3),
    s("__jx_getitem", &["obj", "key"], 2),
    s("__jx_slice", &["obj", "start", "stop", "step"], 1),
    Sig {
        name: "__jx_method",
        params: &["obj", "name"],
        required: 2,
        varargs: true,
        kwargs: true,
        aliases: &[],
        kwonly: true,
    },
    s("__jx_concat", &["a0", "a1"], 2),
    Sig {
        name: "__jx_test",
        params: &["obj", "name"],
        required: 2,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: true,
    },
    k("__jx_dict", &[], 0),
    s("__jx_default", &["a0", "a1", "a2"], 0),
    Sig {
        name: "__jx_list",
        params: &[],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    // tera's own, kept.
    s("throw", &["message"], 1),
    s("get_env", &["name", "default"], 1),
];

/// Lookup plugins (`lookup('name', terms..., key=value)`): params are the keyword options.
pub static LOOKUPS: &[Sig] = &[
    Sig {
        name: "env",
        params: &["default"],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "file",
        params: &["lstrip", "rstrip"],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "vars",
        params: &["default"],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "first_found",
        params: &["files", "paths", "skip"],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "template",
        params: &[
            "convert_data",
            "variable_start_string",
            "variable_end_string",
            "template_vars",
        ],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "password",
        params: &["length", "chars", "encrypt", "seed"],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "items",
        params: &[],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "list",
        params: &[],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "dict",
        params: &[],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
    Sig {
        name: "indexed_items",
        params: &[],
        required: 0,
        varargs: true,
        kwargs: false,
        aliases: &[],
        kwonly: false,
    },
];

/// Options every lookup accepts.
pub const LOOKUP_COMMON: &[&str] = &["wantlist", "errors"];

fn find(table: &'static [Sig], name: &str) -> Option<&'static Sig> {
    table.iter().find(|s| s.name == name)
}

pub fn filter(name: &str) -> Option<&'static Sig> {
    find(FILTERS, name)
}
pub fn test(name: &str) -> Option<&'static Sig> {
    find(TESTS, name)
}
pub fn function(name: &str) -> Option<&'static Sig> {
    find(FUNCTIONS, name)
}
pub fn lookup(name: &str) -> Option<&'static Sig> {
    find(LOOKUPS, name)
}

pub fn table(kind: Kind) -> &'static [Sig] {
    match kind {
        Kind::Filter => FILTERS,
        Kind::Test => TESTS,
        Kind::Function => FUNCTIONS,
        Kind::Lookup => LOOKUPS,
    }
}

/// The names of one kind, for "did you mean".
pub fn names(kind: Kind) -> impl Iterator<Item = &'static str> {
    table(kind).iter().map(|s| s.name)
}
