"""Reads Prometheus text exposition format on stdin with the prometheus-client package's own
parser (prometheus_client.parser.text_string_to_metric_families) and prints what it understood
as JSON: [{"name", "type", "documentation", "samples": [{"name", "labels", "value"}]}]. A parse
error exits non-zero with the parser's message."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = []
for f in text_string_to_metric_families(sys.stdin.read()):
    families.append(
        {
            "name": f.name,
            "type": f.type,
            "documentation": f.documentation,
            "samples": [
                {"name": s.name, "labels": dict(s.labels), "value": s.value}
                for s in f.samples
            ],
        }
    )
json.dump(families, sys.stdout)
