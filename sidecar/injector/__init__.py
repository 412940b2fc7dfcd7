"""The sidecar injector: a mutating admission webhook and an offline CLI that add the sidecar to pods.

settings.py   what the chart configures (image, ConfigMap, Secrets, ports, defaults)
annotations.py the per-pod annotations and their accepted values
containers.py  the sidecar container, its volumes and the application containers' environment
mutate.py      one decision per pod: injected, skipped (with a reason) or rejected
patch.py       RFC 6902 JSON Patch between the pod before and after (the `jsonpatch` library)
review.py      AdmissionReview v1 in and out
server.py      the webhook over TLS (aiohttp), with /metrics and a structured log line per decision
workloads.py   `sidecar inject -f`: the same mutation on manifests (Pods and pod templates)
cli.py         the `inject` and `injector serve` subcommands
"""
