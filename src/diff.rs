//! A text change to show with `--diff`: what a module plans and a reporter renders, so it sits
//! below both.

/// A text change to show with `--diff`.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub path: String,
    pub before: String,
    pub after: String,
    /// Key material: shown as `<redacted>`.
    pub secret: bool,
}
