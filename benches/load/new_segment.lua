-- Every request asks for a segment no earlier request asked for, so no cache can answer it.
local n = 0
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  n = id * 100000000
end
request = function()
  n = n + 1
  local path = wrk.path .. "&where=budget%20%3E%3D%20" .. (1000000 + n)
  return wrk.format(nil, path)
end
