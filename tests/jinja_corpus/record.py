#!/usr/bin/env python3
"""Renders every case of cases.jsonl with the real ansible-playbook and writes expected.jsonl and
magic.json (see README.md). Usage: record.py CORPUS_DIR WORK_DIR [--changed] (record.sh calls it).
With --changed only the cases whose fingerprint (case and template text) differs from the one in
expected.jsonl are rendered again; the others keep their recorded outcome.

One play on localhost (connection local, no facts); one task per case, its variables as task
`vars:`, ignore_errors so every case runs:
  expr      set_fact: {__jx_out: SRC}        -> the native value, or "omit" when SRC omitted it
  cond      debug with `when: SRC`           -> true (ran) / false (skipped)
  template  template: src=FILE dest=WORK/ID  -> the file's text
A failed task records status "error" with Ansible's message. A first task records the magic
variables ansible-playbook defines itself (magic.json), which the Rust test gives castellan. The
inventory puts localhost in every group the corpus names and gives it a value for every variable
the corpus reads through hostvars[...] (they are in magic.json too).
"""
import hashlib
import json
import os
import re
import subprocess
import sys

# Output that changes between runs or machines: recorded as "unstable", not compared.
UNSTABLE = re.compile(r"\brandom\b|\bnow\(|lookup\(\s*['\"](password|pipe|url)|"
                      r"query\(\s*['\"](password|pipe|url)|\bpassword_hash\b|"
                      r"lookup\(\s*['\"]env|query\(\s*['\"]env")

MAGIC_NAMES = ["inventory_hostname", "inventory_hostname_short", "groups", "group_names",
               "playbook_dir", "ansible_check_mode", "ansible_diff_mode", "ansible_play_hosts",
               "ansible_play_batch", "play_hosts", "ansible_play_hosts_all", "ansible_play_name",
               "ansible_run_tags", "ansible_skip_tags", "ansible_forks", "ansible_verbosity",
               "ansible_version", "ansible_config_file",
               "inventory_dir", "inventory_file"]


HOSTVAR = re.compile(r"hostvars\[[^\]]+\]\s*(?:\.\s*(\w+)|\[\s*['\"](\w+)['\"]\s*\])")
GROUP = re.compile(r"groups\[\s*['\"](\w+)['\"]\s*\]|groups\.(\w+)")


def inventory(corpus, cases):
    """localhost in every group the corpus names (`groups['x']`), with a value for every variable
    read through `hostvars[...]`: recorded in magic.json, so castellan gets the same."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import vars as varsgen
    host_vars, groups = {}, set()
    for c in cases:
        text = c["src"] if c["kind"] != "template" else open(os.path.join(corpus, c["src"])).read()
        for m in HOSTVAR.finditer(text):
            name = m.group(1) or m.group(2)
            if name not in varsgen.MAGIC and not varsgen.CONNECTION.match(name) \
                    and not name.startswith("ansible_"):
                host_vars[name] = varsgen.guess(name, None, "hostvars")
        for m in GROUP.finditer(text):
            groups.add(m.group(1) or m.group(2))
    groups.discard("all")
    groups.discard("ungrouped")
    inv = {"all": {"hosts": {"localhost": dict(sorted(host_vars.items()))},
                   "children": {g: {"hosts": {"localhost": None}} for g in sorted(groups)}}}
    return inv, sorted(host_vars)


def fingerprint(corpus, c):
    h = hashlib.sha256(json.dumps(c, sort_keys=True).encode())
    if c["kind"] == "template":
        with open(os.path.join(corpus, c["src"]), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def main():
    corpus, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    all_cases = [json.loads(line) for line in open(os.path.join(corpus, "cases.jsonl"))]
    fps = {c["id"]: fingerprint(corpus, c) for c in all_cases}
    old = {}
    exp_path = os.path.join(corpus, "expected.jsonl")
    if "--changed" in sys.argv[3:] and os.path.exists(exp_path):
        for line in open(exp_path):
            e = json.loads(line)
            old[e["id"]] = e
    cases = [c for c in all_cases if old.get(c["id"], {}).get("fp") != fps[c["id"]]]
    print(f"record: rendering {len(cases)} of {len(all_cases)} cases", file=sys.stderr)
    out_dir = os.path.join(work, "out")
    os.makedirs(out_dir, exist_ok=True)
    inv, host_var_names = inventory(corpus, all_cases)
    with open(os.path.join(work, "inventory.json"), "w") as fh:
        json.dump(inv, fh, indent=1)
    magic = {n: "{{ %s | default('__jx_undefined__') }}" % n for n in MAGIC_NAMES + host_var_names}
    tasks = [{"name": "__magic", "set_fact": {"__jx_magic": magic}}]
    for c in cases:
        t = {"name": c["id"], "ignore_errors": True}
        if c["vars"]:
            t["vars"] = c["vars"]
        if c["kind"] == "expr":
            # A result without __jx_out: SRC omitted it (__jx_set keeps set_fact's args non-empty).
            t["set_fact"] = {"__jx_out": c["src"], "__jx_set": True}
        elif c["kind"] == "cond":
            t["debug"] = {"msg": "ran"}
            t["when"] = c["src"]
        else:
            t["template"] = {"src": os.path.join(os.path.abspath(corpus), c["src"]),
                             "dest": os.path.join(out_dir, c["id"])}
        tasks.append(t)
    play = [{"name": "jinja corpus", "hosts": "localhost", "connection": "local",
             "gather_facts": False, "tasks": tasks}]
    pb = os.path.join(work, "corpus.yml")
    with open(pb if "--reuse" not in sys.argv[3:] else os.devnull, "w") as fh:
        json.dump(play, fh, indent=1)
    results = os.path.join(work, "results.jsonl")
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, CORPUS_RESULTS=results, ANSIBLE_STDOUT_CALLBACK="corpus_json",
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(here, "callback_plugins"),
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_CONFIG=os.path.join(work, "ansible.cfg"))
    with open(env["ANSIBLE_CONFIG"], "a") as fh:
        fh.write("[defaults]\n")
    cmd = [sys.executable, os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
           "-i", os.path.join(work, "inventory.json"), "-e", f"ansible_python_interpreter={sys.executable}", pb]
    if "--reuse" not in sys.argv[3:]:  # --reuse: post-process the results of the last run again
        rc = subprocess.run(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL).returncode
        print(f"record: ansible-playbook exited {rc}", file=sys.stderr)
    got = {}
    for line in open(results):
        r = json.loads(line)
        got[r["name"]] = r
    with open(os.path.join(corpus, "magic.json"), "w") as fh:
        json.dump(got["__magic"]["value"], fh, indent=1, sort_keys=True)
        fh.write("\n")
    counts = {}
    with open(exp_path + ".new", "w") as fh:
        for c in all_cases:
            r = got.get(c["id"])
            e = {"id": c["id"], "fp": fps[c["id"]]}
            if c["id"] in old and old[c["id"]].get("fp") == fps[c["id"]]:
                e = old[c["id"]]
            elif r is None:
                e["status"] = "missing"
            elif UNSTABLE.search(c["src"] if c["kind"] != "template"
                                 else open(os.path.join(corpus, c["src"])).read()):
                e["status"] = "unstable"
            elif r["status"] == "failed":
                e["status"] = "error"
                e["error"] = r.get("error", "")
            elif c["kind"] == "expr":
                if "value" not in r:
                    e["status"] = "omit"
                else:
                    e["status"] = "ok"
                    e["value"] = r.get("value")
            elif c["kind"] == "cond":
                e["status"] = "ok"
                e["value"] = r["status"] == "ok"
            else:
                e["status"] = "ok"
                with open(os.path.join(out_dir, c["id"]), encoding="utf-8", newline="") as t:
                    e["value"] = t.read()
            line = json.dumps(e, ensure_ascii=False)
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:
                # Bytes that are not UTF-8 (b64decode of arbitrary text): not comparable.
                e = {"id": c["id"], "fp": fps[c["id"]], "status": "not_utf8"}
                line = json.dumps(e)
            key = (c["kind"], e["status"])
            counts[key] = counts.get(key, 0) + 1
            fh.write(line + "\n")
    os.replace(exp_path + ".new", exp_path)
    for k in sorted(counts):
        print(f"record: {k[0]:8} {k[1]:9} {counts[k]}", file=sys.stderr)


if __name__ == "__main__":
    main()
