# Stdout callback for record.py: one JSON line per task result into $CORPUS_RESULTS.
import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: corpus_json
type: stdout
short_description: one JSON line per task result (castellan's Jinja2 corpus recorder)
description: Writes task name, status and result to the file named by $CORPUS_RESULTS.
"""


def plain(v):
    """JSON-able copy; Ansible's tagged str/dict/list subclasses become plain ones."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return {"__not_json__": type(v).__name__, "repr": str(v)}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "corpus_json"

    def __init__(self):
        super().__init__()
        self._out = open(os.environ["CORPUS_RESULTS"], "w")

    def _emit(self, status, result):
        data = result._result
        rec = {"name": result._task.get_name(), "status": status}
        if status == "ok":
            facts = data.get("ansible_facts") or {}
            if "__jx_out" in facts:
                rec["value"] = plain(facts["__jx_out"])
            if "__jx_magic" in facts:
                rec["value"] = plain(facts["__jx_magic"])
        elif status == "failed":
            rec["error"] = str(data.get("msg", ""))[:2000]
        self._out.write(json.dumps(rec) + "\n")
        self._out.flush()

    def v2_runner_on_ok(self, result):
        self._emit("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._emit("failed", result)

    def v2_runner_on_skipped(self, result):
        self._emit("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._emit("failed", result)
