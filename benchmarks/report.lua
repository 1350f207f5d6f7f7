-- wrk script: print one JSON line with throughput, latency percentiles and errors, for the Python
-- driver to compare runs. Headers come from wrk's -H options. No response() hook on purpose: it
-- would make wrk hand every response to Lua and cost the load generator CPU the server needs.
function done(summary, latency, requests)
  io.write(string.format(
    '\nWRK_JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, ' ..
    '"p99_ms": %.2f, "max_ms": %.2f, "socket_errors": %d, "bad_status": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
