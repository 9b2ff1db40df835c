-- wrk script for bench/bench.py. The runner sets, in the environment:
--   BENCH_MODE   retrieve | list | filtered | create | mixed
--   BENCH_FILTER the query string of the filtered list
--   BENCH_AUTH   the Authorization header value ("" for the ceiling)
--   BENCH_ROWS   ids 1..BENCH_ROWS exist
--   BENCH_PACE_MS  optional delay before each request (the soak's steady rate)
--   BENCH_BODY_FILE, BENCH_CONTENT_TYPE  for BENCH_MODE=upload: the body every request POSTs to
--                /station/ (a bulk upload), and its media type
--   BENCH_UPLOAD_ITEMS  for BENCH_MODE=backlog: each request is a device's backlog of this many
--                readings, 10 s apart and newer than that device's previous upload, as JSON or
--                CSV (BENCH_CONTENT_TYPE); every wrk thread plays 8 devices in turn

-- wrk loads this file by path, so status_counts.lua is found beside it, not in the working directory.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local status_counts = require("status_counts")

local mode = os.getenv("BENCH_MODE") or "retrieve"
local auth = os.getenv("BENCH_AUTH") or ""
local rows = tonumber(os.getenv("BENCH_ROWS") or "1000")
local pace_ms = tonumber(os.getenv("BENCH_PACE_MS") or "0")
local filter = os.getenv("BENCH_FILTER") or ""
local body_file = os.getenv("BENCH_BODY_FILE") or ""
local content_type = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
local upload_body = ""
if body_file ~= "" then
  local file = assert(io.open(body_file, "rb"))
  upload_body = file:read("*a")
  file:close()
end
local upload_items = tonumber(os.getenv("BENCH_UPLOAD_ITEMS") or "1000")
local devices_per_thread = 8
local create_body = '{"name":"bench","timestamp":1700000000,"temperature":21.5,"lat":59.91,"lon":10.75}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

-- Each thread's own state (wrk runs this script once per thread).
local backlogs_sent = 0
local temperatures = {}
local items = {}

function init(args)
  statuses = {}
  math.randomseed(os.time() + #threads * 7919)
  for n = 1, upload_items do
    temperatures[n] = string.format("%.1f", 15 + ((n - 1) % 100) / 10)
  end
end

local function headers(media_type)
  local h = {}
  if auth ~= "" then h["Authorization"] = auth end
  if media_type then h["Content-Type"] = media_type end
  return h
end

local function retrieve()
  return wrk.format("GET", "/station/" .. math.random(1, rows) .. "/", headers(nil))
end

local function create()
  return wrk.format("POST", "/station/", headers("application/json"), create_body)
end

-- The next device's backlog: its name, and timestamps continuing where its last upload ended.
local function backlog()
  local device = backlogs_sent % devices_per_thread
  local round = math.floor(backlogs_sent / devices_per_thread)
  backlogs_sent = backlogs_sent + 1
  local name = "pi-" .. thread_number .. "-" .. device
  local first = 1800000000 + round * upload_items * 10
  if content_type == "text/csv" then
    for n = 1, upload_items do
      items[n] = name .. "," .. (first + (n - 1) * 10) .. "," .. temperatures[n] .. ",59.91,10.75\n"
    end
    return wrk.format("POST", "/station/", headers(content_type),
      "name,timestamp,temperature,lat,lon\n" .. table.concat(items))
  end
  for n = 1, upload_items do
    items[n] = '{"name":"' .. name .. '","timestamp":' .. (first + (n - 1) * 10) ..
      ',"temperature":' .. temperatures[n] .. ',"lat":59.91,"lon":10.75}'
  end
  return wrk.format("POST", "/station/", headers(content_type),
    "[" .. table.concat(items, ",") .. "]")
end

function request()
  if mode == "retrieve" then
    return retrieve()
  elseif mode == "list" then
    return wrk.format("GET", "/station/", headers(nil))
  elseif mode == "filtered" then
    return wrk.format("GET", "/station/?" .. filter, headers(nil))
  elseif mode == "create" then
    return create()
  elseif mode == "upload" then
    return wrk.format("POST", "/station/", headers(content_type), upload_body)
  elseif mode == "backlog" then
    return backlog()
  elseif math.random() < 0.8 then
    return retrieve()
  else
    return create()
  end
end

if pace_ms > 0 then
  function delay()
    return pace_ms
  end
end

function response(status, headers, body)
  status_counts.count(statuses, status)
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    status_counts.merged_json(threads)))
end
