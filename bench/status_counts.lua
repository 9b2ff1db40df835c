-- Answers counted by status in each wrk thread, and merged at the end: shared by
-- bench/scenario.lua and faults/mixed.lua, which load it with `require`.

local status_counts = {}

-- Counts one answer of `status` in `statuses`, a thread's own table.
function status_counts.count(statuses, status)
  statuses[status] = (statuses[status] or 0) + 1
end

-- The counts of every thread in `threads` (each holding its table in the global `statuses`),
-- summed by status, as the members of a JSON object: "200":12,"503":1
function status_counts.merged_json(threads)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      local key = tostring(status)
      merged[key] = (merged[key] or 0) + count
    end
  end
  local members = {}
  for status, count in pairs(merged) do
    members[#members + 1] = string.format('"%s":%d', status, count)
  end
  return table.concat(members, ",")
end

return status_counts
