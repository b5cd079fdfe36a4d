-- wrk script: sends pre-signed Standard-Webhooks requests, in the order of a file, each once
-- until the file is used up (then from its start again, counted as reused).
--
--   wrk -t1 -c64 -d10s --latency -s presigned.lua URL -- REQUESTS_FILE PATH
--
-- REQUESTS_FILE has one request a line: webhook-id, webhook-timestamp, webhook-signature and
-- the JSON body, separated by tabs. Every request is formatted once, before the run starts, so
-- a request costs wrk a table lookup. At the end one line goes to stdout:
--   wrk-result {"requests": ..., "sent": ..., "reused": ..., ...}

local requests = {}
local count = 0
sent = 0
reused = 0

function init(args)
  local path = args[2]
  for line in io.lines(args[1]) do
    local id, stamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if id then
      count = count + 1
      requests[count] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = id,
        ["webhook-timestamp"] = stamp,
        ["webhook-signature"] = signature,
      }, body)
    end
  end
  if count == 0 then
    error("no request in " .. args[1])
  end
end

function request()
  local i = sent % count + 1
  sent = sent + 1
  if sent > count then
    reused = reused + 1
  end
  return requests[i]
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, _requests)
  local total_sent, total_reused = 0, 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_reused = total_reused + thread:get("reused")
  end
  local e = summary.errors
  io.write(string.format(
    'wrk-result {"requests": %d, "duration_us": %d, "bytes": %d, "sent": %d, "reused": %d, '
      .. '"non_2xx_3xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"timeouts": %d, "latency_p50_us": %d, "latency_p90_us": %d, "latency_p99_us": %d, '
      .. '"latency_max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, total_sent, total_reused, e.status,
    e.connect, e.read, e.write, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
