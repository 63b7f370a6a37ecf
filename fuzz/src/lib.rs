//! What the fuzz targets share: how an input is split into a file and the edit's arguments,
//! and structure-aware argument values.
//!
//! An input is `FILE [\0 ARGS]`: the bytes up to the first NUL are the file the editor works on
//! (so a real configuration file is a seed as it is), the bytes after it drive `arbitrary` to
//! choose the edit. With no NUL (a seed file), the arguments are the first choices of each
//! list below, a realistic edit.

use arbitrary::{Result, Unstructured};

/// Splits an input into the file text (lossy UTF-8: the editors work on `&str`) and the
/// argument bytes.
pub fn split(data: &[u8]) -> (String, Unstructured<'_>) {
    let (file, args) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    (
        String::from_utf8_lossy(file).into_owned(),
        Unstructured::new(args),
    )
}

/// One of `choices` most of the time (the first when the input is exhausted), otherwise any
/// string.
pub fn pick(u: &mut Unstructured<'_>, choices: &[&str]) -> Result<String> {
    let i = u.int_in_range(0..=choices.len())?;
    match choices.get(i) {
        Some(c) => Ok((*c).to_string()),
        None => u.arbitrary::<String>(),
    }
}

/// `None` or [`pick`].
pub fn pick_opt(u: &mut Unstructured<'_>, choices: &[&str]) -> Result<Option<String>> {
    Ok(if u.arbitrary::<bool>()? {
        Some(pick(u, choices)?)
    } else {
        None
    })
}

/// `Some(pick)` unless the input says otherwise (`Some` when the input is exhausted).
pub fn pick_some(u: &mut Unstructured<'_>, choices: &[&str]) -> Result<Option<String>> {
    Ok(if u.arbitrary::<bool>()? {
        None
    } else {
        Some(pick(u, choices)?)
    })
}

/// Fails the run with both texts when an edit applied a second time changed the file.
pub fn assert_idempotent(what: impl FnOnce() -> String, first: &str, second: &str, changed: bool) {
    assert!(
        first == second && !changed,
        "{}: applying the same edit again changed the file (changed={changed})\n--- after the first edit:\n{first:?}\n--- after the second:\n{second:?}",
        what()
    );
}

/// The file as the editor finds it: the text, or (one input in sixteen) no file at all.
pub fn existing<'t>(u: &mut Unstructured<'_>, text: &'t str) -> Option<&'t str> {
    let missing = u.ratio(1, 16).unwrap_or(false);
    (!missing).then_some(text)
}

/// An edit that reports "unchanged" must return the file it was given, byte for byte.
pub fn assert_unchanged_is_input(current: Option<&str>, changed: bool, content: &str) {
    if let (false, Some(t)) = (changed, current) {
        assert_eq!(content, t, "unchanged but the content differs");
    }
}
