-- wrk script for bench/run's http-post and https-post scenarios: every
-- request is a POST of a small JSON reading whose "seq" is unique across
-- wrk's threads, so the subscriber can tell losses from duplicates. Run as
--   wrk -t THREADS -c 64 -d 20s --latency -s http-post.lua URL -- THREADS [TOKENS]
-- Without TOKENS the requests go to 50 device paths URL/d0 .. URL/d49.
-- TOKENS is a file of "DEVICE TOKEN" lines: then request N goes to
-- URL/<device N mod the number of devices> with "Authorization: Bearer
-- <that device's token>" (https-post: each device its own path and token).
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
local plain = { ["Content-Type"] = "application/json" }
local devices = nil   -- { {path = ..., headers = {...}}, ... } when TOKENS is given

function init(args)
  stride = tonumber(args[1]) or 1
  tid = tid or 0
  base = wrk.path
  if args[2] then
    devices = {}
    for line in io.lines(args[2]) do
      local id, token = line:match("^(%S+)%s+(%S+)")
      if id then
        table.insert(devices, {
          path = string.format("%s/%s", base, id),
          headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token },
        })
      end
    end
    assert(#devices > 0, "no devices in " .. args[2])
  end
end

function request()
  local seq = counter * stride + tid
  counter = counter + 1
  local body = string.format('{"seq":%d,"v":21.5}', seq)
  if devices then
    local device = devices[seq % #devices + 1]
    return wrk.format("POST", device.path, device.headers, body)
  end
  return wrk.format("POST", string.format("%s/d%d", base, seq % 50), plain, body)
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
