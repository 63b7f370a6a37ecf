//! `blockinfile`: the pure editor `blockinfile::edit`, with fuzzed arguments.
//!
//! Properties: no panic; an edit that reports no change returns the input byte for byte; the
//! same edit applied to its own result changes nothing (where Ansible promises it: see the
//! exceptions below); after `present` both markers are in the file.
#![no_main]

use arbitrary::{Result, Unstructured};
use castellan::modules::files::blockinfile::{edit, Args};
use castellan::modules::files::State;
use castellan_fuzz::{assert_idempotent, assert_unchanged_is_input, existing, pick, split};
use libfuzzer_sys::fuzz_target;

const BLOCKS: &[&str] = &[
    "hostssl all all 0.0.0.0/0 cert\nhostssl all all ::/0 cert",
    "one line",
    "",
    "trailing newline\n",
    "a\r\nb",
    "\n\nblank lines\n\n",
];
const MARKERS: &[&str] = &[
    "# {mark} ANSIBLE MANAGED BLOCK",
    "# {mark} castellan tls",
    "<!-- {mark} -->",
    "{mark}",
    "# no mark",
];
const MARKS: &[&str] = &["BEGIN", "END", "", "B E"];
const INSERT: &[&str] = &["EOF", "BOF", "^#", "(?m)^local", "^host", "x$"];

fn args(u: &mut Unstructured<'_>) -> Result<Args> {
    let (insertafter, insertbefore) = match u.int_in_range(0..=2)? {
        0 => (None, None),
        1 => (Some(pick(u, INSERT)?), None),
        _ => (None, Some(pick(u, INSERT)?)),
    };
    let marker_begin = pick(u, MARKS)?;
    let marker_end = match u.int_in_range(0..=4)? {
        0 => marker_begin.clone(),
        _ => pick(u, &["END", "BEGIN", "", "E N D"])?,
    };
    Ok(Args {
        block: pick(u, BLOCKS)?,
        marker: pick(u, MARKERS)?,
        marker_begin,
        marker_end,
        insertafter,
        insertbefore,
        state: if u.ratio(1, 4)? {
            State::Absent
        } else {
            State::Present
        },
        create: u.arbitrary()?,
        append_newline: u.arbitrary()?,
        prepend_newline: u.arbitrary()?,
    })
}

fuzz_target!(|data: &[u8]| {
    let (text, mut u) = split(data);
    let Ok(a) = args(&mut u) else {
        return;
    };
    let current = existing(&mut u, &text);
    let Ok(first) = edit(current, &a) else {
        return;
    };
    let ctx = || format!("args: {a:?}\ninput: {current:?}");
    assert_unchanged_is_input(current, first.changed, &first.content);
    let begin = a.marker.replace("{mark}", &a.marker_begin);
    let end = a.marker.replace("{mark}", &a.marker_end);
    if begin == end {
        // Ansible documents it: with the same opening and closing marker, the block is
        // inserted again on every run. Nothing is promised then.
        return;
    }
    let lines: Vec<&str> = first.content.lines().collect();
    if a.state == State::Present && !a.block.is_empty() {
        let b = lines.iter().rposition(|l| *l == begin);
        let e = lines.iter().rposition(|l| *l == end);
        assert!(
            b.is_some() && e.is_some(),
            "markers missing ({}):\n{:?}",
            ctx(),
            first.content
        );
    }
    // As in Ansible, the markers are trusted to mark one block: with several blocks of the same
    // markers, or a lone marker line, the edit works on the last BEGIN and the last END found
    // (`absent` removes one block per run, a stray END swallows what is between); a block that
    // holds its own marker line is cut there on the next run. Idempotence is promised for a
    // file with no marker line or one well-formed block.
    let input = current.unwrap_or_default();
    let find = |m: &str| {
        let v: Vec<usize> = input
            .lines()
            .enumerate()
            .filter(|(_, l)| *l == m)
            .map(|(i, _)| i)
            .collect();
        v
    };
    let well_formed = match (find(&begin).as_slice(), find(&end).as_slice()) {
        ([], []) => true,
        ([b], [e]) => b < e,
        _ => false,
    };
    if !well_formed || a.block.lines().any(|l| l == begin || l == end) {
        return;
    }
    let second = edit(Some(&first.content), &a).expect("the same edit failed the second time");
    assert_idempotent(
        || format!("blockinfile ({})", ctx()),
        &first.content,
        &second.content,
        second.changed,
    );
});
