-- wrk script for the CDS service benchmark (bench/loadgen.py writes the files it reads).
--
--   wrk -t T -c C -d D -s bench/wrk.lua URL -- BODY_FILE TOKENS_FILE T
--
-- Every request POSTs the same JSON body with its own single-use JWT: the service refuses a
-- replayed jti, so thread i of T takes tokens i, i+T, i+2T, ... of the pre-minted pool and
-- never shares one. When a thread has used its share it stops (and says so), rather than
-- replaying tokens that would be refused. The floor receives the very same requests.
-- TOKENS_FILE "-" sends no Authorization header (an anonymous call).

local threads = {}
local counter = 0

function setup(thread)
   thread:set("index", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local function read_file(path)
   local file = assert(io.open(path, "rb"))
   local data = file:read("*a")
   file:close()
   return data
end

local body, tokens, position, path, anonymous
exhausted = 0  -- a global: done() reads it with thread:get

function init(args)
   body = read_file(args[1])
   path = wrk.path
   position = 0
   if args[2] == "-" then
      tokens = nil
      anonymous = wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
      return
   end
   local all = {}
   for line in io.lines(args[2]) do
      if #line > 0 then all[#all + 1] = line end
   end
   tokens = {}
   local step = tonumber(args[3]) or 1
   for i = index + 1, #all, step do
      tokens[#tokens + 1] = all[i]
   end
end

function request()
   if tokens == nil then return anonymous end
   position = position + 1
   if position > #tokens then
      exhausted = 1
      wrk.thread:stop()
      position = 1
   end
   local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. tokens[position],
   }
   return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
   local exhausted_threads = 0
   for _, thread in ipairs(threads) do
      exhausted_threads = exhausted_threads + (thread:get("exhausted") or 0)
   end
   io.write(string.format(
      "BENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d" ..
      " p50_us=%d p90_us=%d p99_us=%d max_us=%d exhausted=%d\n",
      summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      exhausted_threads))
end
