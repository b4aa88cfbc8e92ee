"""Scrapes `mogr serve`'s /_mogr/metrics with Prometheus's own Python parsers — the OpenMetrics one,
which refuses what that format does not allow, and the classic text-format one — and prints the
samples as one JSON object, `name{label=value,...}` -> value. Used by cli/tests/serve.rs."""

import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as classic

with urllib.request.urlopen(sys.argv[1] + "/_mogr/metrics") as resp:
    kind = resp.headers["Content-Type"]
    text = resp.read().decode()
assert kind.startswith("application/openmetrics-text"), kind
samples = {}
for family in openmetrics(text):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        samples[f"{s.name}{{{labels}}}"] = s.value
assert len(list(classic(text))) > 0
print(json.dumps(samples))
