//! The roles that put a client certificate on a host, and where: `certs status` reads those
//! files on the hosts of the role's group without being told. Each row repeats the role
//! defaults its path and name read, so the inventory alone (host and group variables, no
//! playbook) is enough; the test at the bottom of this file checks each row against the role's
//! `defaults/main.yml` and tasks, for every role in the tree.
//!
//! A role added later needs no row: its hosts list their certificates in the host variable
//! `castellan_cert_files` (see `targets.rs`).

/// A role that holds a client certificate on the hosts of `group`.
#[derive(Debug)]
pub struct Holder {
    /// The inventory group whose hosts hold the file.
    pub group: &'static str,
    /// The role that writes it (`roles/ROLE`).
    pub role: &'static str,
    /// The certificate file on the host (a template over the host's variables).
    pub path: &'static str,
    /// Its certificate name in the PKI (`client/NAME/`), a template.
    pub name: &'static str,
    /// When false for a host, the role writes no certificate there (a template expression).
    pub when: Option<&'static str>,
    /// The role defaults `path`, `name` and `when` read: (variable, default), used when the
    /// inventory does not set the variable.
    pub defaults: &'static [(&'static str, &'static str)],
}

const CAP_DEFAULTS: &[(&str, &str)] = &[
    ("cap_config_dir", "/etc/cryptosense-analyzer"),
    ("cap_ssl_dir", "{{ cap_config_dir }}/ssl"),
    ("cap_client_crt", "{{ cap_ssl_dir }}/client.crt"),
    ("cap_client_cert_name", "cap"),
];

/// Every holder role castellan ships.
pub const HOLDERS: &[Holder] = &[
    // roles/postgres_tls, tasks_from: pem_agent (playbooks/pem-backend.yml).
    Holder {
        group: "pem_agents",
        role: "postgres_tls",
        path: "{{ pem_agent_ssl_dir }}/{{ pem_agent_db_user }}.crt",
        name: "{{ pem_agent_cert_name }}",
        when: None,
        defaults: &[
            ("pem_agent_ssl_dir", "/root/.pem"),
            ("pem_agent_db_user", "agent1"),
            ("pem_agent_cert_name", "pem-agent-{{ inventory_hostname }}"),
        ],
    },
    // roles/cast_imaging_client (playbooks/cast-imaging.yml): no client files with `require`.
    Holder {
        group: "cast_imaging",
        role: "cast_imaging_client",
        path: "{{ cast_client_crt }}",
        name: "{{ cast_client_cert_name }}",
        when: Some("cast_ssl_mode != 'require'"),
        defaults: &[
            ("cast_ssl_mode", "verify-full"),
            (
                "cast_ssl_dir",
                "{% if ansible_shell_type | default(value='sh') in ['powershell', 'cmd'] %}C:\\CAST\\ssl{% else %}/etc/cast-imaging/ssl{% endif %}",
            ),
            ("cast_client_crt", "{{ cast_ssl_dir }}/client.crt"),
            ("cast_db_user", "operator"),
            (
                "cast_client_cert_name",
                "{{ cast_db_user }}.{{ inventory_hostname }}",
            ),
        ],
    },
    // roles/cap (playbooks/cap-upgrade.yml): the same files on every web and worker VM.
    Holder {
        group: "cap_web",
        role: "cap",
        path: "{{ cap_client_crt }}",
        name: "{{ cap_client_cert_name }}",
        when: None,
        defaults: CAP_DEFAULTS,
    },
    Holder {
        group: "cap_worker",
        role: "cap",
        path: "{{ cap_client_crt }}",
        name: "{{ cap_client_cert_name }}",
        when: None,
        defaults: CAP_DEFAULTS,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A row must say what its role does: each default is the role's own, and the path
    /// template is written in the role's tasks. Roles not in this tree (yet) are listed and
    /// skipped; postgres_tls must be checked.
    #[test]
    fn every_row_agrees_with_its_role() {
        let roles = Path::new(env!("CARGO_MANIFEST_DIR")).join("roles");
        let mut checked = Vec::new();
        let mut absent = Vec::new();
        for h in HOLDERS {
            let dir = roles.join(h.role);
            if !dir.is_dir() {
                absent.push(h.role);
                continue;
            }
            let defaults: serde_yaml::Value = serde_yaml::from_str(
                &std::fs::read_to_string(dir.join("defaults/main.yml")).unwrap(),
            )
            .unwrap();
            for (var, want) in h.defaults {
                let have = match &defaults[*var] {
                    serde_yaml::Value::String(s) => s.clone(),
                    serde_yaml::Value::Number(n) => n.to_string(),
                    other => panic!("{}: {var} is {other:?} in the role", h.role),
                };
                assert_eq!(&have, want, "{}: default of {var}", h.role);
            }
            let mut tasks = String::new();
            for e in std::fs::read_dir(dir.join("tasks")).unwrap() {
                tasks.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
            }
            assert!(
                tasks.contains(h.path),
                "{}: its tasks never write {:?}",
                h.role,
                h.path
            );
            checked.push(h.group);
        }
        eprintln!("holder rows checked: {checked:?}; roles not in this tree: {absent:?}");
        assert!(checked.contains(&"pem_agents"), "{checked:?}");
    }
}
