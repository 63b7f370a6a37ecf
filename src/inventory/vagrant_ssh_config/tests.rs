//! Unit tests on recorded `vagrant ssh-config` outputs (tests/fixtures/vagrant/: recordings, one
//! per provider, see its README) and on malformed text.
use std::path::Path;

use super::*;

const DOCKER: &str = include_str!("../../../tests/fixtures/vagrant/ssh-config.docker.txt");
const VIRTUALBOX: &str = include_str!("../../../tests/fixtures/vagrant/ssh-config.virtualbox.txt");
const LIBVIRT: &str = include_str!("../../../tests/fixtures/vagrant/ssh-config.libvirt.txt");

fn host(name: &str, addr: &str, port: u16, key: &str) -> SshHost {
    SshHost {
        name: name.into(),
        host_name: addr.into(),
        port,
        user: Some("vagrant".into()),
        identity_file: Some(key.into()),
    }
}

fn err(text: &str) -> String {
    let e = parse(text, Path::new("/v/ssh-config.txt")).unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    e.to_string()
}

#[test]
fn docker_recording() {
    let hosts = parse(DOCKER, Path::new("docker.txt")).unwrap();
    let dir = "/src/castellan/vagrant/.vagrant/machines";
    assert_eq!(
        hosts,
        vec![
            host(
                "pg13",
                "172.30.14.11",
                22,
                &format!("{dir}/pg13/docker/private_key")
            ),
            host(
                "pg17",
                "172.30.14.13",
                22,
                &format!("{dir}/pg17/docker/private_key")
            ),
        ]
    );
}

#[test]
fn virtualbox_recording_ports_and_quoted_paths() {
    let hosts = parse(VIRTUALBOX, Path::new("vb.txt")).unwrap();
    let dir = "/home/ana/work projects/castellan/vagrant/.vagrant/machines";
    assert_eq!(
        hosts,
        vec![
            host(
                "pg13",
                "127.0.0.1",
                2222,
                &format!("{dir}/pg13/virtualbox/private_key")
            ),
            host(
                "pg15",
                "127.0.0.1",
                2200,
                &format!("{dir}/pg15/virtualbox/private_key")
            ),
        ]
    );
}

#[test]
fn libvirt_recording_first_identity_file_wins() {
    let hosts = parse(LIBVIRT, Path::new("lv.txt")).unwrap();
    let dir = "/home/ana/castellan/vagrant/.vagrant/machines";
    assert_eq!(
        hosts,
        vec![
            host(
                "pg15",
                "192.168.121.45",
                22,
                &format!("{dir}/pg15/libvirt/private_key")
            ),
            host(
                "cast1",
                "192.168.121.112",
                22,
                &format!("{dir}/cast1/libvirt/private_key")
            ),
        ]
    );
}

#[test]
fn equals_sign_and_case_insensitive_keywords() {
    let hosts = parse(
        "host a\n  HOSTNAME=10.0.0.1\n  port = 2022\n",
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(hosts[0].host_name, "10.0.0.1");
    assert_eq!(hosts[0].port, 2022);
    assert_eq!(hosts[0].user, None);
}

#[test]
fn errors_name_file_line_and_column() {
    assert_eq!(
        err("Host a\n  HostName 10.0.0.1\n  Port 70000\n"),
        "/v/ssh-config.txt:3:8: expected a port number, found \"70000\""
    );
    assert_eq!(
        err("  HostName 10.0.0.1\n"),
        "/v/ssh-config.txt:1:3: `HostName` before the first `Host` line"
    );
    assert_eq!(
        err("Host a\n  User vagrant\n"),
        "/v/ssh-config.txt:1:1: machine `a` has no `HostName`"
    );
    assert_eq!(
        err("Host a b\n"),
        "/v/ssh-config.txt:1:6: expected one machine name after `Host`, found \"a b\""
    );
    assert!(err("Host a\n  HostName x\nHost a\n  HostName y\n")
        .contains("3:6: machine `a` is described twice"));
    assert!(
        err("Host a\n  HostName x\n  ProxyCommand ssh -W %h:%p vm\n")
            .contains("3:3: `ProxyCommand` is not supported")
    );
    assert!(err("Host a\n  HostName x\n  Frobnicate yes\n")
        .contains("unknown ssh-config keyword `Frobnicate`"));
    assert!(
        err("Host a\n  HostName x\n  IdentityFile \"/a b\n").contains("3:16: unbalanced quotes")
    );
    assert!(err("Host a\n  HostName\n").contains("2:3: expected `Keyword value`"));
}

#[test]
fn empty_text_is_no_machine() {
    assert_eq!(parse("\n# nothing\n", Path::new("x")).unwrap(), vec![]);
}
