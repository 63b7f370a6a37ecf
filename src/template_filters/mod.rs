//! The filter, test and function library of Jinja2 3.1 and ansible-core 2.19, registered on
//! tera through its public API (`register`). Every call binds its arguments to the Python
//! signature in `signatures.rs`: positional ones as `a0`, `a1`... (what the Jinja2 lowering
//! emits), keyword ones by name, castellan's older keyword names as aliases.
use std::collections::HashMap;

use serde_json::{Map, Value};
use tera::{Result, Tera};

pub mod apply;
pub mod args;
pub mod dicts;
pub mod encoding;
pub mod helpers;
pub mod lists;
pub mod logic;
pub mod lookups;
pub mod methods;
pub mod numbers;
pub mod paths;
pub mod pystr;
pub mod pyval;
pub mod random;
pub mod regex;
#[cfg(test)]
mod render_tests;
pub mod signatures;
pub mod strings;
pub mod tests;
pub mod undefined;
pub mod version;
pub mod yaml_out;

use args::Bound;
pub use undefined::{is_undefined, undefined};

pub type FilterFn = fn(&Value, &Bound) -> Result<Value>;
pub type TestFn = fn(Option<&Value>, &Bound) -> Result<bool>;
pub type FunctionFn = fn(&Bound) -> Result<Value>;

/// Every filter castellan implements (tera's `default`, `concat`, `get`, `nth`, `filter`,
/// `group_by`, `as_str`, `json_encode` stay tera's own).
pub static FILTERS: &[(&str, FilterFn)] = &[
    ("abs", numbers::abs),
    ("attr", dicts::attr),
    ("b64decode", encoding::b64decode),
    ("b64encode", encoding::b64encode),
    ("basename", paths::basename),
    ("batch", lists::batch),
    ("bool", logic::bool),
    ("capitalize", strings::capitalize),
    ("center", strings::center),
    ("checksum", encoding::sha1),
    ("combinations", lists::combinations),
    ("combine", dicts::combine),
    ("comment", strings::comment),
    ("count", lists::length),
    ("dict2items", dicts::dict2items),
    ("dictsort", dicts::dictsort),
    ("difference", lists::difference),
    ("dirname", paths::dirname),
    ("e", strings::escape),
    ("escape", strings::escape),
    ("expanduser", paths::expanduser),
    ("expandvars", paths::expandvars),
    ("extract", dicts::extract),
    ("first", lists::first),
    ("flatten", lists::flatten),
    ("float", numbers::float),
    ("forceescape", strings::escape),
    ("format", strings::format),
    ("from_json", encoding::from_json),
    ("from_yaml", encoding::from_yaml),
    ("from_yaml_all", encoding::from_yaml_all),
    ("groupby", lists::groupby),
    ("hash", encoding::hash),
    ("human_readable", numbers::human_readable),
    ("human_to_bytes", numbers::human_to_bytes),
    ("indent", strings::indent),
    ("int", numbers::int),
    ("intersect", lists::intersect),
    ("items", dicts::items),
    ("items2dict", dicts::items2dict),
    ("join", lists::join),
    ("last", lists::last),
    ("length", lists::length),
    ("list", lists::to_list),
    ("log", numbers::log),
    ("lower", strings::lower),
    ("mandatory", logic::mandatory),
    ("map", apply::map),
    ("max", lists::max),
    ("md5", encoding::md5),
    ("min", lists::min),
    ("normpath", paths::normpath_filter),
    ("path_join", paths::path_join),
    ("permutations", lists::permutations),
    ("pow", numbers::pow),
    ("pprint", encoding::pprint),
    ("product", lists::product),
    ("quote", strings::quote),
    ("random", random::random),
    ("realpath", paths::realpath),
    ("regex_escape", regex::regex_escape),
    ("regex_findall", regex::regex_findall),
    ("regex_replace", regex::regex_replace),
    ("regex_search", regex::regex_search),
    ("reject", apply::reject),
    ("rejectattr", apply::rejectattr),
    ("relpath", paths::relpath),
    ("replace", strings::replace),
    ("reverse", lists::reverse),
    ("root", numbers::root),
    ("round", numbers::round),
    ("safe", strings::safe),
    ("select", apply::select),
    ("selectattr", apply::selectattr),
    ("sha1", encoding::sha1),
    ("shuffle", random::shuffle),
    ("slice", lists::slice),
    ("sort", lists::sort),
    ("split", strings::split),
    ("splitext", paths::splitext),
    ("string", strings::string),
    ("striptags", strings::striptags),
    ("subelements", lists::subelements),
    ("sum", lists::sum),
    ("symmetric_difference", lists::symmetric_difference),
    ("ternary", logic::ternary),
    ("title", strings::title),
    ("to_json", encoding::to_json),
    ("to_nice_json", encoding::to_nice_json),
    ("to_nice_yaml", encoding::to_nice_yaml),
    ("to_octal", numbers::to_octal),
    ("to_uuid", encoding::to_uuid),
    ("to_yaml", encoding::to_yaml),
    ("tojson", encoding::tojson),
    ("trim", strings::trim),
    ("truncate", strings::truncate),
    ("type_debug", logic::type_debug),
    ("union", lists::union),
    ("unique", lists::unique),
    ("upper", strings::upper),
    ("urldecode", encoding::urldecode),
    ("urlencode", encoding::urlencode),
    ("urlsplit", encoding::urlsplit),
    ("wordcount", strings::wordcount),
    ("wordwrap", strings::wordwrap),
    ("xmlattr", dicts::xmlattr),
    ("zip", lists::zip),
    ("zip_longest", lists::zip_longest),
    ("__jx_default", logic::jx_default),
    ("__jx_str", logic::jx_str),
];

/// Filters that accept the undefined sentinel as their operand.
const TAKES_UNDEFINED: &[&str] = &["mandatory", "__jx_default", "__jx_str"];

pub static TESTS: &[(&str, TestFn)] = &[
    ("!=", tests::ne),
    ("<", tests::lt),
    ("<=", tests::le),
    ("==", tests::eq_),
    (">", tests::gt),
    (">=", tests::ge),
    ("abs", tests::is_abs),
    ("all", tests::all),
    ("any", tests::any),
    ("boolean", tests::boolean),
    ("callable", tests::callable),
    ("change", tests::changed),
    ("changed", tests::changed),
    ("contains", tests::contains),
    ("defined", tests::defined),
    ("directory", tests::is_dir),
    ("divisibleby", tests::divisibleby),
    ("eq", tests::eq_),
    ("equalto", tests::eq_),
    ("escaped", tests::escaped),
    ("even", tests::even),
    ("exists", tests::exists),
    ("failed", tests::failed),
    ("failure", tests::failed),
    ("false", tests::false_),
    ("falsy", tests::falsy),
    ("file", tests::is_file),
    ("finished", tests::finished),
    ("float", tests::float),
    ("ge", tests::ge),
    ("greaterthan", tests::gt),
    ("gt", tests::gt),
    ("in", tests::in_),
    ("integer", tests::integer),
    ("is_abs", tests::is_abs),
    ("is_dir", tests::is_dir),
    ("is_file", tests::is_file),
    ("is_link", tests::is_link),
    ("issubset", tests::subset),
    ("issuperset", tests::superset),
    ("iterable", tests::iterable),
    ("le", tests::le),
    ("lessthan", tests::lt),
    ("link", tests::is_link),
    ("lower", tests::lower),
    ("lt", tests::lt),
    ("mapping", tests::mapping),
    ("match", tests::match_),
    ("nan", tests::nan),
    ("ne", tests::ne),
    ("none", tests::none),
    ("number", tests::number),
    ("odd", tests::odd),
    ("reachable", tests::reachable),
    ("regex", tests::regex_),
    ("sameas", tests::sameas),
    ("search", tests::search),
    ("sequence", tests::sequence),
    ("skip", tests::skipped),
    ("skipped", tests::skipped),
    ("started", tests::started),
    ("string", tests::string),
    ("subset", tests::subset),
    ("succeeded", tests::succeeded),
    ("success", tests::succeeded),
    ("successful", tests::succeeded),
    ("superset", tests::superset),
    ("true", tests::true_),
    ("truthy", tests::truthy),
    ("undefined", tests::undefined_),
    ("unreachable", tests::unreachable),
    ("upper", tests::upper),
    ("version", tests::version),
    ("version_compare", tests::version),
];

fn lookup_fn(b: &Bound) -> Result<Value> {
    lookups::run(b, false)
}
fn query_fn(b: &Bound) -> Result<Value> {
    lookups::run(b, true)
}

pub static FUNCTIONS: &[(&str, FunctionFn)] = &[
    ("lookup", lookup_fn),
    ("query", query_fn),
    ("q", query_fn),
    ("range", helpers::range),
    ("dict", helpers::dict),
    ("__jx_add", helpers::jx_add),
    ("__jx_floordiv", helpers::jx_floordiv),
    ("__jx_mod", helpers::jx_mod),
    ("__jx_cmp", helpers::jx_cmp),
    ("__jx_getitem", helpers::jx_getitem),
    ("__jx_slice", helpers::jx_slice),
    ("__jx_method", methods::jx_method),
    ("__jx_concat", helpers::jx_concat),
    ("__jx_test", apply::jx_test),
    ("__jx_dict", helpers::jx_dict),
    ("__jx_list", helpers::jx_list),
    ("__jx_default", helpers::jx_default),
];

fn sig_of(table: &'static [signatures::Sig], name: &str) -> Result<&'static signatures::Sig> {
    table
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| tera::Error::msg(format!("no signature for `{name}`")))
}

fn run_filter(
    name: &'static str,
    f: FilterFn,
    v: &Value,
    args: &HashMap<String, Value>,
) -> Result<Value> {
    let sig = sig_of(signatures::FILTERS, name)?;
    if !TAKES_UNDEFINED.contains(&name) {
        args::operand(name, v)?;
    }
    let b = Bound::named(sig, args)?.defined()?;
    f(v, &b)
}

fn run_test(name: &'static str, f: TestFn, v: Option<&Value>, args: &[Value]) -> Result<bool> {
    let sig = sig_of(signatures::TESTS, name)?;
    let b = Bound::positional(sig, args)?.defined()?;
    f(v, &b)
}

/// Apply the filter `name` (for `map('name', ...)`): positional and keyword arguments.
pub fn call_filter(name: &str, v: &Value, pos: &[Value], kw: &Map<String, Value>) -> Result<Value> {
    let (n, f) = FILTERS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| tera::Error::msg(format!("no filter named '{name}'")))?;
    let mut args: HashMap<String, Value> = kw.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (i, p) in pos.iter().enumerate() {
        args.insert(format!("a{i}"), p.clone());
    }
    run_filter(n, *f, v, &args)
}

/// Apply the test `name` (for `select('name', ...)`).
pub fn call_test(name: &str, v: Option<&Value>, pos: &[Value]) -> Result<bool> {
    let (n, f) = TESTS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| tera::Error::msg(format!("no test named '{name}'")))?;
    run_test(n, *f, v, pos)
}

pub fn register(tera: &mut Tera) {
    for (name, f) in FILTERS {
        let (name, f): (&'static str, FilterFn) = (name, *f);
        tera.register_filter(name, move |v: &Value, a: &HashMap<String, Value>| {
            run_filter(name, f, v, a)
        });
    }
    for (name, f) in TESTS {
        let (name, f): (&'static str, TestFn) = (name, *f);
        tera.register_tester(name, move |v: Option<&Value>, a: &[Value]| {
            run_test(name, f, v, a)
        });
    }
    for (name, f) in FUNCTIONS {
        let (name, f): (&'static str, FunctionFn) = (name, *f);
        tera.register_function(name, move |a: &HashMap<String, Value>| {
            let sig = sig_of(signatures::FUNCTIONS, name)?;
            f(&Bound::named(sig, a)?)
        });
    }
}

/// Ansible's `bool` as castellan's modules read flags: yes/no/on/off/true/false/1/0.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => crate::boolean::parse(s.trim()) == Some(true),
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tables {
    use super::*;

    #[test]
    fn every_implementation_has_a_signature() {
        for (n, _) in FILTERS {
            assert!(signatures::filter(n).is_some(), "filter {n}");
        }
        for (n, _) in TESTS {
            assert!(signatures::test(n).is_some(), "test {n}");
        }
        for (n, _) in FUNCTIONS {
            assert!(signatures::function(n).is_some(), "function {n}");
        }
    }

    #[test]
    fn names_are_unique_and_signatures_sane() {
        use signatures::Kind;
        for kind in [Kind::Filter, Kind::Test, Kind::Function, Kind::Lookup] {
            let mut names: Vec<&str> = signatures::names(kind).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{kind:?} has a name twice");
            for s in signatures::table(kind) {
                assert!(s.required <= s.params.len(), "{}", s.name);
                for (_, p) in s.aliases {
                    assert!(s.params.contains(p), "{}: alias to {p}", s.name);
                }
            }
        }
    }
}
