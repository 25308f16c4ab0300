"""The experiments behind the documented numbers (demo, accuracy study, benchmarks, report
rendering), written over the package's public API. The scripts in ``tools/`` are their command lines."""
