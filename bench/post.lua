-- wrk script: replays pre-signed inbox POSTs from a file, one distinct
-- request after another (each carries its own activity id and signature).
-- File format, one request per line: path \t Header: value \t ... \t body
local reqs = {}
local idx = 1

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local parts = {}
    for p in string.gmatch(line, "[^\t]+") do parts[#parts + 1] = p end
    local headers = {}
    for i = 2, #parts - 1 do
      local k, v = string.match(parts[i], "^([^:]+): (.*)$")
      headers[k] = v
    end
    reqs[#reqs + 1] = wrk.format("POST", parts[1], headers, parts[#parts])
  end
  f:close()
end

function request()
  local r = reqs[idx]
  idx = idx + 1
  if idx > #reqs then idx = 1 end
  return r
end
