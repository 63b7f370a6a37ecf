//! The filters, tests and functions a template may name: tera's own, castellan's
//! (`template_filters`) and the lowering's helpers. A stand-in for
//! `template_filters::signatures` (issue 16, contract item 8) until that table exists: names
//! only, no arity.

/// What kind of callable a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Filter,
    Test,
    Function,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Test => "test",
            Kind::Function => "function",
        }
    }
}

const FILTERS: &[&str] = &[
    // tera (default features off)
    "upper",
    "lower",
    "trim",
    "trim_start",
    "trim_end",
    "trim_start_matches",
    "trim_end_matches",
    "truncate",
    "wordcount",
    "replace",
    "capitalize",
    "title",
    "linebreaksbr",
    "indent",
    "striptags",
    "spaceless",
    "escape",
    "escape_xml",
    "addslashes",
    "split",
    "int",
    "float",
    "first",
    "last",
    "nth",
    "join",
    "sort",
    "unique",
    "slice",
    "group_by",
    "filter",
    "map",
    "concat",
    "abs",
    "pluralize",
    "round",
    "length",
    "reverse",
    "json_encode",
    "as_str",
    "get",
    // castellan (src/template_filters.rs)
    "bool",
    "to_json",
    "to_nice_json",
    "to_yaml",
    "to_nice_yaml",
    "from_json",
    "basename",
    "dirname",
    "regex_replace",
    "regex_search",
    "b64encode",
    "b64decode",
    "quote",
    "mandatory",
    "dict2items",
    "combine",
    "to_octal",
    "urlencode",
    // Jinja2 names the lowering maps onto the above
    "default",
    "d",
];

const TESTS: &[&str] = &[
    "defined",
    "undefined",
    "odd",
    "even",
    "string",
    "number",
    "divisibleby",
    "iterable",
    "object",
    "starting_with",
    "ending_with",
    "containing",
    "matching",
];

const FUNCTIONS: &[&str] = &["range", "throw", "get_env"];

/// Every name of a kind.
pub fn names(kind: Kind) -> impl Iterator<Item = &'static str> {
    match kind {
        Kind::Filter => FILTERS.iter(),
        Kind::Test => TESTS.iter(),
        Kind::Function => FUNCTIONS.iter(),
    }
    .copied()
}

/// Is this (normalized) name known?
pub fn known(kind: Kind, name: &str) -> bool {
    names(kind).any(|n| n == name)
}
