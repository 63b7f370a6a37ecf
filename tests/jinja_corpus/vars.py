"""The variable set each corpus case is rendered with (used by collect.py).

Order of preference for a variable the case reads: the same repository's role defaults/vars when
their value is a plain (template-free) value; a fixed set of facts (a Debian 12 host); a result
dict for names the repository `register:`s; otherwise a typed value guessed from the name and from
how the case uses it (`| bool`, `| int`, `for x in`, `in`, attributes read...). Names guarded
by `is defined`/`default` are left undefined for half of the expressions and conditions (by a hash of the case), and
booleans flip by the same hash, so both branches of conditions occur. Deterministic.
"""
import base64
import hashlib
import re

import jinja2
from jinja2 import nodes

FACTS = {
    "ansible_distribution": "Debian",
    "ansible_distribution_major_version": "12",
    "ansible_distribution_version": "12.5",
    "ansible_distribution_release": "bookworm",
    "ansible_os_family": "Debian",
    "ansible_system": "Linux",
    "ansible_kernel": "6.1.0-18-amd64",
    "ansible_architecture": "x86_64",
    "ansible_machine": "x86_64",
    "ansible_hostname": "db1",
    "ansible_nodename": "db1",
    "ansible_fqdn": "db1.example.com",
    "ansible_domain": "example.com",
    "ansible_pkg_mgr": "apt",
    "ansible_service_mgr": "systemd",
    "ansible_processor_vcpus": 2,
    "ansible_processor_cores": 2,
    "ansible_processor_count": 1,
    "ansible_memtotal_mb": 4096,
    "ansible_user_id": "root",
    "ansible_user_dir": "/root",
    "ansible_virtualization_type": "kvm",
    "ansible_virtualization_role": "guest",
    "ansible_default_ipv4": {"address": "10.0.0.5", "interface": "eth0", "gateway": "10.0.0.1",
                             "netmask": "255.255.255.0", "network": "10.0.0.0"},
    "ansible_all_ipv4_addresses": ["10.0.0.5"],
    "ansible_interfaces": ["lo", "eth0"],
    "ansible_python": {"version": {"major": 3, "minor": 11, "micro": 2}, "executable": "/usr/bin/python3"},
    "ansible_python_version": "3.11.2",
    "ansible_env": {"HOME": "/root", "PATH": "/usr/local/bin:/usr/bin:/bin", "USER": "root"},
    "ansible_selinux": {"status": "disabled"},
    "ansible_apparmor": {"status": "enabled"},
    "ansible_mounts": [{"mount": "/", "device": "/dev/vda1", "fstype": "ext4", "size_total": 21474836480}],
    "ansible_lsb": {"codename": "bookworm", "id": "Debian", "major_release": "12"},
    "ansible_date_time": {"date": "2026-01-01", "epoch": "1767225600", "year": "2026"},
}
FACTS["ansible_facts"] = {k[len("ansible_"):]: v for k, v in FACTS.items()}

# Set by ansible-playbook itself: never given as variables (the test takes them from magic.json).
MAGIC = {"inventory_hostname", "inventory_hostname_short", "groups", "group_names", "hostvars",
         "play_hosts", "ansible_play_hosts", "ansible_play_batch", "ansible_play_hosts_all",
         "playbook_dir", "ansible_check_mode", "ansible_diff_mode", "ansible_version", "omit",
         "ansible_play_name", "ansible_run_tags", "ansible_skip_tags", "ansible_limit",
         "ansible_verbosity", "ansible_config_file", "ansible_playbook_python", "inventory_dir",
         "inventory_file", "ansible_forks", "ansible_connection", "ansible_inventory_sources",
         "ansible_search_path", "ansible_managed", "role_path", "role_name", "lookup", "query",
         "q", "range", "dict", "lipsum", "cycler", "joiner", "namespace", "now", "undef",
         "ansible_loop", "ansible_loop_var", "ansible_index_var", "loop", "ansible_parent_role_names",
         "ansible_role_names", "ansible_dependent_role_names", "ansible_collection_name",
         "ansible_python_interpreter", "template_host", "template_path", "template_fullpath",
         "template_uid", "template_run_date", "template_destpath"}

# Connection and privilege variables change how Ansible runs the task: never given.
CONNECTION = re.compile(r"^ansible_(host|port|user|become.*|ssh.*|connection|.*_interpreter|shell.*|"
                        r"password|private_key_file|remote_tmp|pipelining|timeout|sudo.*|"
                        r"winrm.*|psrp.*|network_os|libssh.*|paramiko.*|remote.*)$")

BOOL_WORDS = ("enabled", "enable", "install", "manage", "use_", "_use", "is_", "has_", "force",
              "allow", "disable", "present", "restart", "reload", "skip", "debug", "dry",
              "active", "configure", "create", "update", "upgrade", "remove", "purge", "check",
              "ssl", "tls", "only", "required", "needed", "exists", "changed", "failed")
INT_WORDS = ("port", "timeout", "size", "count", "max", "min", "limit", "_mb", "_gb", "_kb",
             "seconds", "retries", "delay", "_days", "interval", "number", "_num", "uid", "gid",
             "_id", "workers", "connections", "weight", "priority", "level", "bits", "_ttl")
LIST_SUFFIXES = ("s", "_list", "_hosts", "_packages", "_users", "_databases", "_options")


def h(*parts):
    return int(hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8], 16)


def plain(v):
    """A value with no template inside (Ansible would render a template in a variable lazily)."""
    if isinstance(v, str):
        return "{{" not in v and "{%" not in v and "{#" not in v
    if isinstance(v, list):
        return all(plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and plain(k) and plain(x) for k, x in v.items())
    return v is None or isinstance(v, (bool, int, float))


class Usage:
    def __init__(self):
        self.attrs = {}      # name -> nested dict of attribute names read
        self.kind = {}       # name -> "bool" | "int" | "list" | "dict" | "str"
        self.guarded = set()
        self.loop_elems = {}  # iterable name -> loop variable name

    def tree(self, name):
        return self.attrs.setdefault(name, {})


def root_path(node):
    """Name and attribute path of `a.b['c'].d`, or None."""
    path = []
    while True:
        if isinstance(node, nodes.Getattr):
            path.append(int(node.attr) if node.attr.isdigit() else node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and \
                isinstance(node.arg.value, (str, int)) and not isinstance(node.arg.value, bool):
            path.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            return node.name, list(reversed(path))
        else:
            return None


def mark(u, node, kind):
    rp = root_path(node)
    if rp is None:
        return
    name, path = rp
    if not path:
        u.kind.setdefault(name, kind)
    else:
        t = u.tree(name)
        for p in path[:-1]:
            t = t.setdefault(p, {})
        t.setdefault(path[-1], {})
        t[path[-1]].setdefault("__kind__", kind)


LIST_FILTERS = {"join", "length", "count", "first", "last", "unique", "sort", "map", "select",
                "reject", "selectattr", "rejectattr", "list", "flatten", "union", "difference",
                "intersect", "min", "max", "sum", "batch", "zip", "product", "random"}
STR_FILTERS = {"lower", "upper", "replace", "regex_replace", "regex_search", "split", "trim",
               "basename", "dirname", "quote", "b64encode", "regex_findall", "splitext",
               "capitalize", "title", "center", "truncate", "wordcount", "hash", "password_hash"}


def analyse(ast, cond):
    u = Usage()
    for n in ast.find_all((nodes.Getattr, nodes.Getitem)):
        rp = root_path(n)
        if rp and rp[1]:
            t = u.tree(rp[0])
            for p in rp[1]:
                t = t.setdefault(p, {})
    for n in ast.find_all(nodes.Filter):
        if n.node is None:
            continue
        if n.name in ("bool", "ternary"):
            mark(u, n.node, "bool")
        elif n.name in ("int", "float", "abs", "round"):
            mark(u, n.node, "int")
        elif n.name in LIST_FILTERS:
            mark(u, n.node, "list")
        elif n.name == "b64decode":
            mark(u, n.node, "b64")
        elif n.name in ("dict2items", "combine"):
            mark(u, n.node, "dict")
        elif n.name in STR_FILTERS:
            mark(u, n.node, "str")
        elif n.name in ("default", "d"):
            rp = root_path(n.node)
            if rp and not rp[1]:
                u.guarded.add(rp[0])
    for n in ast.find_all(nodes.Test):
        if n.name in ("defined", "undefined", "none"):
            rp = root_path(n.node)
            if rp and not rp[1]:
                u.guarded.add(rp[0])
        elif n.name in ("changed", "failed", "succeeded", "success", "skipped", "skip", "change",
                        "failure", "finished", "started"):
            rp = root_path(n.node)
            if rp and not rp[1]:
                u.kind.setdefault(rp[0], "result")
        elif n.name in ("version", "version_compare"):
            mark(u, n.node, "version")
    for n in ast.find_all(nodes.Compare):
        for op in n.ops:
            if op.op in ("in", "notin"):
                mark(u, op.expr, "list")
            if isinstance(op.expr, nodes.Const) and isinstance(op.expr.value, (int, float)) \
                    and not isinstance(op.expr.value, bool):
                mark(u, n.expr, "int")
    for n in ast.find_all(nodes.For):
        it = n.iter
        while isinstance(it, nodes.Filter) and it.node is not None:
            it = it.node
        rp = root_path(it)
        if rp is None:
            continue
        if isinstance(n.target, nodes.Name):
            if not rp[1]:
                u.kind.setdefault(rp[0], "list")
                u.loop_elems[rp[0]] = n.target.name
            else:
                mark(u, it, "list")
        else:
            mark(u, it, "dict")
    if cond:
        for n in ast.find_all(nodes.If):
            stack = [n.test]
            while stack:
                e = stack.pop()
                if isinstance(e, (nodes.And, nodes.Or)):
                    stack += [e.left, e.right]
                elif isinstance(e, nodes.Not):
                    stack.append(e.node)
                else:
                    mark(u, e, "bool")
    return u


def sub_tree(sub):
    return {x: y for x, y in sub.items() if x != "__kind__"}


def merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def guess(name, kind, seed, tree=None):
    name = str(name)
    low = name.lower()
    if tree and all(isinstance(k, int) for k in tree if k != "__kind__"):
        # Indexed (`x[0].a`, `x.1`): a list long enough, its items built from every index's use.
        idx = [k for k in tree if k != "__kind__"]
        elem = {}
        kinds = [tree[i].get("__kind__") for i in idx]
        for i in idx:
            elem = merge(elem, sub_tree(tree[i]))
        n = max(max(idx) + 1, 2)
        return [guess(f"{low}_{i}", next((k for k in kinds if k), None), f"{seed}.{i}", elem)
                for i in range(n)]
    if tree:
        d = {}
        for k, sub in tree.items():
            if k == "__kind__" or isinstance(k, int):
                continue
            d[k] = guess(k, sub.get("__kind__"), seed + "." + k, sub_tree(sub))
        if kind == "list":
            return [d, {k: v for k, v in d.items()}]
        return d
    flip = h(seed, name) % 2 == 0
    if kind == "bool":
        return flip
    if kind == "int":
        return 5432 if "port" in low else 10
    if kind == "version":
        return "15"
    if kind == "b64":
        return base64.b64encode(f"{low} content\n".encode()).decode()
    if kind == "dict":
        return {"key1": "value1", "key2": "value2"}
    if kind == "result":
        return result_dict(seed, {})
    if kind == "list":
        return [f"{low}_a", f"{low}_b"]
    if kind == "str":
        return f"{low}_value"
    if "version" in low:
        return "15"
    if any(w in low for w in INT_WORDS) and not low.endswith(("_file", "_dir", "_path")):
        return 5432 if "port" in low else 10
    if any(w in low for w in BOOL_WORDS):
        return flip
    if low.endswith(("_dir", "_path", "_home", "_root", "directory")):
        return f"/var/lib/{low}"
    if low.endswith(("_file", "_conf", "_cert", "_key", "_crt")):
        return f"/etc/{low}.conf"
    if low.endswith(("_user", "_owner", "_group")):
        return "postgres"
    if low.endswith(("_host", "_address", "_ip", "_addr", "hostname")):
        return "10.0.0.5"
    if "password" in low or "secret" in low:
        return "s3cret"
    if low.endswith(LIST_SUFFIXES) and not low.endswith(("ss", "us", "is")):
        return [f"{low}_a", f"{low}_b"]
    return f"{low}_value"


def result_dict(seed, tree):
    r = {"changed": h(seed, "changed") % 2 == 0, "failed": False, "rc": 0,
         "stdout": "ok", "stdout_lines": ["ok"], "stderr": "", "stderr_lines": [], "msg": ""}
    if "stat" in tree:
        r["stat"] = {"exists": h(seed, "exists") % 2 == 0, "isdir": False, "path": "/etc/x",
                     "mode": "0644", "pw_name": "root", "size": 10}
        extra = guess("stat", None, seed + ".stat", sub_tree(tree["stat"]))
        if isinstance(extra, dict):
            r["stat"] = {**extra, **r["stat"]}
    if "results" in tree:
        item = {"changed": True, "failed": False, "rc": 0, "stdout": "ok", "item": "item_a",
                "stat": {"exists": True}}
        elem = {}
        for k, sub in sub_tree(tree["results"]).items():
            elem = merge(elem, sub_tree(sub)) if isinstance(k, int) else elem
        extra = guess("result", None, seed + ".results", elem) if elem else {}
        r["results"] = [{**extra, **item}]
    for k, sub in tree.items():
        if k not in r and k != "__kind__" and not isinstance(k, int):
            r[k] = guess(k, sub.get("__kind__"), seed + "." + k, sub_tree(sub))
    return r


def undeclared(ast):
    """Names read and never assigned (for/set/macro targets): meta.find_undeclared_variables
    without its compile step, which needs every filter registered."""
    stored = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    loaded = {n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"}
    return sorted(loaded - stored)


class RepoContext:
    def __init__(self, defaults, registered):
        self.defaults = {k: v for k, v in defaults.items() if plain(v)}
        self.registered = registered
        self.env = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])

    def vars_for(self, kind, src):
        text = "{% if " + src + " %}{% endif %}" if kind == "cond" else src
        try:
            ast = self.env.parse(text)
        except jinja2.TemplateSyntaxError:
            return {}
        names = undeclared(ast)
        u = analyse(ast, kind == "cond")
        seed = kind + "\0" + src
        out = {}
        for name in names:
            if name in MAGIC or CONNECTION.match(name):
                continue
            # (A template file may guard a name in one place and read it plainly in another.)
            if name in u.guarded and kind != "template" and h(seed, name, "guard") % 2 == 0:
                continue
            tree = u.attrs.get(name, {})
            if name in self.defaults:
                out[name] = self.defaults[name]
            elif name in FACTS:
                out[name] = FACTS[name]
            elif name in self.registered or u.kind.get(name) == "result":
                out[name] = result_dict(seed + name, tree)
            elif name in u.loop_elems:
                elem = u.loop_elems[name]
                et = u.attrs.get(elem, {})
                if et:
                    out[name] = guess(elem, "list", seed, et)
                else:
                    out[name] = [f"{name}_a", f"{name}_b"]
            else:
                out[name] = guess(name, u.kind.get(name), seed, tree)
        return out
