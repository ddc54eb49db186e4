-- wrk script for bench/run's http-post scenario: every request is a POST of a
-- small JSON reading whose "seq" is unique across wrk's threads, so the
-- subscriber can tell losses from duplicates. Run as
--   wrk -t THREADS -c 64 -d 20s --latency -s http-post.lua URL -- THREADS
-- done() prints one line "WRK_JSON {...}" with the totals and the latency
-- percentiles in microseconds, which bench/run reads.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local counter = 0
local stride = 1
local base = "/"
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  stride = tonumber(args[1]) or 1
  tid = tid or 0
  base = wrk.path
end

function request()
  local seq = counter * stride + tid
  counter = counter + 1
  local path = string.format("%s/d%d", base, seq % 50)
  return wrk.format("POST", path, headers, string.format('{"seq":%d,"v":21.5}', seq))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f,"max":%.1f,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
