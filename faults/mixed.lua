-- wrk script for the fault tests: a mix of reads and writes through the balancer, with every
-- answer counted by status. Environment: AUTH (an Authorization header value) and IDS (a
-- comma-separated list of reading ids that exist, for retrieves).
-- The mix: 2 in 5 retrieve a reading, 1 in 5 read the first page, 2 in 5 create a reading.

-- The status tally is bench/status_counts.lua's; wrk loads this file by path.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../bench/?.lua;" .. package.path
local status_counts = require("status_counts")

local auth = os.getenv("AUTH")
local ids = {}
for id in string.gmatch(os.getenv("IDS") or "", "%d+") do
    ids[#ids + 1] = id
end

local threads = {}
local counter = 0

function setup(thread)
    thread:set("id", #threads)
    threads[#threads + 1] = thread
end

function init(args)
    statuses = {}
    sequence = 0
end

function request()
    sequence = sequence + 1
    local pick = sequence % 5
    local headers = { ["Authorization"] = auth }
    if pick == 0 or pick == 3 then
        local body = string.format(
            '{"name":"wrk-%d","timestamp":%d,"temperature":%d.5,"lat":52.1,"lon":4.3}',
            id, 1700000000 + sequence, sequence % 40)
        headers["Content-Type"] = "application/json"
        return wrk.format("POST", "/station/", headers, body)
    elseif pick == 1 and #ids > 0 then
        return wrk.format("GET", "/station/" .. ids[(sequence % #ids) + 1] .. "/", headers)
    elseif pick == 4 and #ids > 0 then
        return wrk.format("GET", "/station/" .. ids[((sequence * 7) % #ids) + 1] .. "/", headers)
    else
        return wrk.format("GET", "/station/", headers)
    end
end

function response(status, headers, body)
    status_counts.count(statuses, status)
end

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format(
        'WRK_RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
        '"statuses":{%s},"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
        summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
        latency:percentile(99) / 1e3, latency.max / 1e3, status_counts.merged_json(threads),
        errors.connect, errors.read, errors.write, errors.timeout))
end
