"""Benchmarks that target any S3 endpoint (Coffre's or a peer's) and print ratios.

`loadgen` drives one endpoint, `compare` alternates two endpoints and writes a Markdown table
to `bench/results/`. Nothing here is imported by `ring`, `storage` or `gateway`.
"""
