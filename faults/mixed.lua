-- wrk script for the fault tests: a mix of reads and writes through the balancer, with every
-- answer counted by status. Environment: AUTH (an Authorization header value) and IDS (a
-- comma-separated list of reading ids that exist, for retrieves).
-- The mix: 2 in 5 retrieve a reading, 1 in 5 read the first page, 2 in 5 create a reading.

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
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local totals = {}
    for _, thread in ipairs(threads) do
        local counted = thread:get("statuses")
        for status, n in pairs(counted) do
            totals[status] = (totals[status] or 0) + n
        end
    end
    local parts = {}
    for status, n in pairs(totals) do
        parts[#parts + 1] = string.format('"%d":%d', status, n)
    end
    local errors = summary.errors
    io.write(string.format(
        'WRK_RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
        '"statuses":{%s},"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
        summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
        latency:percentile(99) / 1e3, latency.max / 1e3, table.concat(parts, ","),
        errors.connect, errors.read, errors.write, errors.timeout))
end
