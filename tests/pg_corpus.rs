//! Issue 5, acceptance 5 (first part): a corpus of real-world and odd postgresql.conf and
//! pg_hba.conf files (tests/fixtures/pg/) round-trips byte-identically through the parsers, and
//! edits on each are well-formed and idempotent.
//!
//! The corpus: Debian's PostgreSQL 15 samples (the files the PostgreSQL source ships), the files
//! of a `pg_createcluster` cluster and of a plain `initdb`, and handcrafted odd ones (includes,
//! `''` and `\'` quotes, `=`-less lines, tabs, CRLF, continuation lines, invalid lines, no final
//! newline).

use std::fs;
use std::path::PathBuf;

use castellan::postgres::conf::{ConfFile, LineKind};
use castellan::postgres::hba::{apply, HbaEdit, HbaFile, Position, RecordKind, RuleSpec, Want};

fn corpus(hba: bool) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pg");
    let mut out: Vec<(String, String)> = fs::read_dir(&dir)
        .expect("tests/fixtures/pg")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.contains("hba") == hba
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&p).expect("UTF-8 fixture"))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 4, "corpus too small: {out:?}");
    out
}

#[test]
fn postgresql_conf_corpus_round_trips() {
    for (name, text) in corpus(false) {
        let f = ConfFile::parse(&text);
        assert_eq!(f.render(), text, "{name} does not round-trip");
        let errors = f.errors();
        if name.starts_with("odd-") {
            continue;
        }
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn odd_postgresql_conf_is_read_as_postgres_reads_it() {
    let text = fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pg/odd-postgresql.conf"),
    )
    .unwrap();
    let f = ConfFile::parse(&text);
    assert_eq!(f.get("listen_addresses"), Some("*"));
    assert_eq!(f.get("port"), Some("5432"));
    assert_eq!(f.get("max_connections"), Some("100"));
    assert_eq!(f.get("work_mem"), Some("4096kB"));
    assert_eq!(f.get("effective_cache_size"), Some("4GB"));
    assert_eq!(f.get("seq_page_cost"), Some(".5"));
    assert_eq!(f.get("checkpoint_timeout"), Some("0x12c"));
    assert_eq!(f.get("search_path"), Some("\"$user\", public"));
    assert_eq!(f.get("application_name"), Some("it's mine"));
    assert_eq!(
        f.get("cluster_name"),
        Some("escaped ' quote and \\ backslash")
    );
    assert_eq!(f.get("datestyle"), Some("iso, dmy"), "last duplicate wins");
    assert_eq!(f.get("ssl"), Some("off"));
    assert_eq!(f.get("pg_stat_statements.track"), Some("all"));
    assert_eq!(f.get("unicode_value"), Some("naïve"));
    assert_eq!(f.get("last_line_without_newline"), Some("true"));
    let includes: Vec<_> = f.includes().map(|s| s.value.as_str()).collect();
    assert_eq!(includes, ["extra.conf", "maybe.conf", "conf.d"]);
    assert_eq!(f.errors().len(), 3, "{:?}", f.errors());
    let commented = f
        .lines
        .iter()
        .filter(|l| matches!(&l.kind, LineKind::Comment { commented: Some(_) }))
        .count();
    assert_eq!(commented, 2);
}

#[test]
fn postgresql_conf_corpus_edits() {
    for (name, text) in corpus(false) {
        let mut f = ConfFile::parse(&text);
        for (k, v) in [
            ("ssl", "on"),
            ("ssl_cert_file", "/etc/ssl/it's here/server.crt"),
            ("ssl_min_protocol_version", "TLSv1.2"),
            ("DateStyle", "iso, ymd"),
            ("port", "5433"),
        ] {
            f.set(k, v).unwrap();
        }
        let out = f.render();
        let g = ConfFile::parse(&out);
        assert_eq!(
            g.get("ssl_cert_file"),
            Some("/etc/ssl/it's here/server.crt")
        );
        assert_eq!(g.get("datestyle"), Some("iso, ymd"));
        for k in ["ssl", "ssl_cert_file", "port", "datestyle"] {
            assert_eq!(g.active(k).len(), 1, "{name}: {k} once");
        }
        let msgs = |f: &ConfFile| f.errors().into_iter().map(|(_, e)| e).collect::<Vec<_>>();
        assert_eq!(msgs(&g), msgs(&ConfFile::parse(&text)), "{name}");
        // Only the lines we touched changed.
        let before: Vec<_> = text.lines().collect();
        let after: Vec<_> = out.lines().collect();
        let kept = before.iter().filter(|l| after.contains(l)).count();
        assert!(before.len() - kept <= 8, "{name}: too many lines changed");
        let mut h = g.clone();
        assert!(!h.set("ssl", "on").unwrap().changed, "{name}: idempotent");
    }
}

#[test]
fn pg_hba_corpus_round_trips() {
    for (name, text) in corpus(true) {
        let f = HbaFile::parse(&text);
        assert_eq!(f.render(), text, "{name} does not round-trip");
        if name.starts_with("odd-") {
            continue;
        }
        // The source sample keeps initdb's @placeholders@: only those lines are invalid.
        for (i, e) in f.errors() {
            assert!(
                f.records[i].raw.contains('@'),
                "{name}: record {i} `{}`: {e}",
                f.records[i].raw
            );
        }
        if !name.ends_with(".sample") {
            assert!(f.rules().count() >= 3, "{name}");
        }
    }
}

#[test]
fn odd_pg_hba_is_read_as_postgres_reads_it() {
    let text = fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pg/odd-pg_hba.conf"),
    )
    .unwrap();
    let f = HbaFile::parse(&text);
    let rules: Vec<_> = f.rules().collect();
    assert_eq!(rules.len(), 14, "{rules:#?}");
    assert_eq!(rules[4].database.len(), 2);
    assert!(rules[4].user[0].quoted);
    assert_eq!(rules[5].user[0].text, "+admins");
    assert_eq!(rules[8].option("map"), Some("cn map"));
    assert_eq!(rules[11].method, "scram-sha-256", "continuation line");
    assert_eq!(rules[12].option("ldapsuffix"), Some(", dc=example, dc=com"));
    // The comment ending with a backslash swallowed `host all all 0.0.0.0/0 trust`.
    assert!(!rules.iter().any(|r| r.method == "trust"));
    let includes = f
        .records
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::Include { .. }))
        .count();
    assert_eq!(includes, 2);
    assert_eq!(f.errors().len(), 2, "{:?}", f.errors());
}

#[test]
fn pg_hba_corpus_edits() {
    let rule = |addr: &str| RuleSpec {
        conn_type: "hostssl".into(),
        database: "all".into(),
        user: "all".into(),
        address: Some(addr.into()),
        netmask: None,
        method: "scram-sha-256".into(),
        options: vec![("clientcert".into(), "verify-full".into())],
    };
    let e = HbaEdit {
        rules: vec![rule("0.0.0.0/0"), rule("::/0")],
        state: Want::Present,
        position: Position::BeforeFirstHost,
        block_plain: true,
        server_version: Some(150004),
    };
    for (name, text) in corpus(true) {
        let mut f = HbaFile::parse(&text);
        let report = apply(&mut f, &e).unwrap();
        assert_eq!(
            report.added.len() + report.updated.len() + report.moved.len(),
            2,
            "{name}: {report:?}"
        );
        let out = f.render();
        let g = HbaFile::parse(&out);
        assert_eq!(
            g.errors().len(),
            HbaFile::parse(&text).errors().len(),
            "{name}"
        );
        // Our rules come before every remaining host rule.
        let first_ssl = g.rules().position(|r| r.conn_type == "hostssl").unwrap();
        let first_host = g
            .rules()
            .position(|r| r.conn_type.starts_with("host"))
            .unwrap();
        assert_eq!(first_ssl, first_host, "{name}:\n{out}");
        // No plain TCP rule is left (loopback included), but `reject` rules stay.
        assert!(
            !g.rules()
                .any(|r| matches!(r.conn_type.as_str(), "host" | "hostnossl")
                    && r.method != "reject"),
            "{name}:\n{out}"
        );
        let mut h = g.clone();
        let again = apply(&mut h, &e).unwrap();
        assert!(!again.changed(), "{name}: {again:?}");
        assert_eq!(h.render(), out);
    }
}
