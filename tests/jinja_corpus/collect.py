#!/usr/bin/env python3
"""Collects the Jinja2 corpus from clones of public Ansible repositories (see README.md).

Usage: collect.py SOURCES_DIR OUT_DIR
SOURCES_DIR holds one git repository per source, named owner+name (a bare or normal clone at the
commit listed in SOURCES below). Writes OUT_DIR/cases.jsonl and OUT_DIR/templates/<owner+name>/...

Cases:
  expr      a YAML string holding `{{`/`{%` (rendered as Ansible renders a task argument: a lone
            `{{ e }}` keeps its native type)
  cond      a `when:`/`changed_when:`/`failed_when:`/`until:` condition (one per list item)
  template  a `.j2` file under templates/ (rendered by the template module)
Each case gets a variable set (vars.py) and its provenance (repo, path, line, commit).
Runs under ansible-core's venv python (needs PyYAML and Jinja2, which ansible-core brings).
"""
import hashlib
import json
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vars as varsgen  # noqa: E402

# owner/name, commit, licence
SOURCES = [
    ("geerlingguy/ansible-role-postgresql", "dbb2f6767748beed4f58c29adf76c6ec024679ed", "MIT"),
    ("ANXS/postgresql", "f584098c83e01861c8364e78ff744bf7001db384", "MIT"),
    ("ansible-collections/community.postgresql", "f04ea33de85fbe5b0fd35e57179e7dc836ed1825", "GPL-3.0-or-later"),
    ("EnterpriseDB/edb-ansible", "929ec8a6036b769e9190220e36ec7ca2e321529c", "PostgreSQL-style permissive (EnterpriseDB)"),
    ("dev-sec/ansible-collection-hardening", "c3822fca2d101ab93a40a614d9618f69fbbb52e9", "Apache-2.0"),
    ("vitabaks/postgresql_cluster", "991608fd4e407d6dcec71dba7db72bf802580ce6", "MIT"),
    ("geerlingguy/ansible-role-certbot", "f8e02e1e83182dca09cec447c4da5f0081303755", "MIT"),
    ("geerlingguy/ansible-role-nginx", "9616ea992897b3ed864d7b44ffbf69b160f9eb5d", "MIT"),
    ("geerlingguy/ansible-role-security", "36640d3af0e91b84c530b65563218b125af9e208", "MIT"),
    ("geerlingguy/ansible-role-mysql", "8a84b1dd1502eb3645f90d17a8b6037c241e182c", "MIT"),
    ("geerlingguy/ansible-role-firewall", "00cae1460faba30acdd482a3736c4c668c6bb260", "MIT"),
    ("geerlingguy/ansible-role-haproxy", "8b23ff0ffb56ce466eb3a7f3fec995f6f2e91add", "MIT"),
    ("geerlingguy/ansible-role-ntp", "026bbe680fcbc2ca74a0f6c6b352dac5e4c66e20", "MIT"),
    ("geerlingguy/ansible-role-apache", "d28c26b4c466c5eabd0f043c3598cb60fe347cfa", "MIT"),
    ("cloudalchemy/ansible-node-exporter", "3be7ef074b94572d2637d7c339e333cea0ffd849", "MIT"),
]

COND_KEYS = {"when", "changed_when", "failed_when", "until"}
MAX_TEMPLATE_BYTES = 40000


def git(repo, *args):
    return subprocess.run(["git", "--git-dir", repo, *args], check=True,
                          capture_output=True).stdout


def git_dir(path):
    return path if os.path.isdir(os.path.join(path, "objects")) else os.path.join(path, ".git")


def skip_path(p):
    parts = p.split("/")
    return any(x in (".github", "node_modules", "docs", "changelogs") for x in parts) or \
        parts[-1] in (".travis.yml", ".gitlab-ci.yml", "mkdocs.yml", ".ansible-lint", ".yamllint")


def walk(node, on_scalar, cond=False):
    if isinstance(node, yaml.ScalarNode):
        on_scalar(node, cond)
    elif isinstance(node, yaml.SequenceNode):
        for n in node.value:
            walk(n, on_scalar, cond)
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            is_cond = isinstance(k, yaml.ScalarNode) and k.value in COND_KEYS
            if isinstance(k, yaml.ScalarNode) and ("{{" in k.value or "{%" in k.value):
                on_scalar(k, False)
            walk(v, on_scalar, is_cond)


def registered_names(node, out):
    if isinstance(node, yaml.SequenceNode):
        for n in node.value:
            registered_names(n, out)
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "register" and isinstance(v, yaml.ScalarNode):
                out.add(v.value)
            registered_names(v, out)


def defaults_of(doc, out):
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(k, str) and k not in out:
                out[k] = v


def main():
    src_dir, out_dir = sys.argv[1], sys.argv[2]
    cases, seen = [], set()
    os.makedirs(os.path.join(out_dir, "templates"), exist_ok=True)
    for full, commit, _lic in SOURCES:
        slug = full.replace("/", "+")
        repo = git_dir(os.path.join(src_dir, slug))
        if not os.path.isdir(repo):
            print(f"collect: {slug} missing, skipped", file=sys.stderr)
            continue
        commit = commit or git(repo, "rev-parse", "HEAD").decode().strip()
        files = git(repo, "ls-tree", "-r", "--name-only", commit).decode().splitlines()
        files = [f for f in files if not skip_path(f)]
        docs, registered, defaults = {}, set(), {}
        for f in files:
            if not f.endswith((".yml", ".yaml")):
                continue
            text = git(repo, "show", f"{commit}:{f}").decode("utf-8", "replace")
            try:
                nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
            except yaml.YAMLError:
                continue
            docs[f] = nodes
            for n in nodes:
                registered_names(n, registered)
            if "/defaults/" in "/" + f or "/vars/" in "/" + f:
                try:
                    for d in yaml.safe_load_all(text):
                        defaults_of(d, defaults)
                except yaml.YAMLError:
                    pass
        ctx = varsgen.RepoContext(defaults, registered)
        for f, nodes in docs.items():
            found = []

            def on_scalar(node, cond, f=f):
                if node.tag != "tag:yaml.org,2002:str" or not isinstance(node.value, str):
                    return
                v = node.value
                if "${{" in v:
                    return
                if cond:
                    if "{{" in v or "{%" in v or not v.strip():
                        return
                    found.append(("cond", v.strip(), node.start_mark.line + 1))
                elif "{{" in v or "{%" in v:
                    found.append(("expr", v, node.start_mark.line + 1))

            for n in nodes:
                walk(n, on_scalar)
            for kind, src, line in found:
                key = (kind, src)
                if key in seen:
                    continue
                seen.add(key)
                cases.append({"kind": kind, "src": src, "repo": full, "path": f, "line": line,
                              "commit": commit, "vars": ctx.vars_for(kind, src)})
        for f in files:
            if not f.endswith(".j2") or "templates/" not in f:
                continue
            data = git(repo, "show", f"{commit}:{f}")
            if len(data) > MAX_TEMPLATE_BYTES:
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            key = ("template", hashlib.sha256(data).hexdigest())
            if key in seen:
                continue
            seen.add(key)
            rel = os.path.join("templates", slug, f)
            os.makedirs(os.path.dirname(os.path.join(out_dir, rel)), exist_ok=True)
            with open(os.path.join(out_dir, rel), "wb") as fh:
                fh.write(data)
            cases.append({"kind": "template", "src": rel, "repo": full, "path": f, "line": 1,
                          "commit": commit, "vars": ctx.vars_for("template", text)})
    order = {"expr": 0, "cond": 1, "template": 2}
    cases.sort(key=lambda c: (order[c["kind"]], c["repo"], c["path"], c["line"], c["src"]))
    counts = {}
    with open(os.path.join(out_dir, "cases.jsonl"), "w") as fh:
        for c in cases:
            counts[c["kind"]] = counts.get(c["kind"], 0) + 1
            digest = hashlib.sha256(f"{c['kind']}\0{c['repo']}\0{c['src']}".encode()).hexdigest()
            c = {"id": f"{c['kind']}-{digest[:10]}", **c}
            fh.write(json.dumps(c, sort_keys=False) + "\n")
    print(f"collect: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
